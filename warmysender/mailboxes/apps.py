from django.apps import AppConfig


class MailboxesConfig(AppConfig):
    name = "warmysender.mailboxes"
    label = "mailboxes"
    default_auto_field = "django.db.models.BigAutoField"
