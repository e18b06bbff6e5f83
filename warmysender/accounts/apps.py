from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "warmysender.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
