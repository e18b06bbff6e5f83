from django.apps import AppConfig


class LinkedinConfig(AppConfig):
    name = "warmysender.linkedin"
    label = "linkedin"
    default_auto_field = "django.db.models.BigAutoField"
