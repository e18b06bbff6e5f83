from django.apps import AppConfig


class EmailConfig(AppConfig):
    name = "warmysender.email"
    label = "email"
    default_auto_field = "django.db.models.BigAutoField"
