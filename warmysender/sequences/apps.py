from datetime import datetime
from typing import Any

from django.apps import AppConfig


class SequencesConfig(AppConfig):
    name = "warmysender.sequences"
    label = "sequences"
    verbose_name = "Campaigns and sequences"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from warmysender.mailboxes import services as mailbox_services
        from warmysender.sequences import services

        # Deleting a mailbox hands its in-flight prospects back to their campaign pools.
        def release_enrollments(mailbox: Any, actor: Any, now: datetime) -> None:
            services.before_mailbox_delete(mailbox, now=now)

        mailbox_services.before_mailbox_delete.append(release_enrollments)
