from django.apps import AppConfig


class ProspectsConfig(AppConfig):
    name = "warmysender.prospects"
    label = "prospects"
    default_auto_field = "django.db.models.BigAutoField"
