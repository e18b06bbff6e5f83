from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "warmysender.inbox"
    label = "inbox"
    default_auto_field = "django.db.models.BigAutoField"
