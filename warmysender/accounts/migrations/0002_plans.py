"""The plans and their limits, as data (spec §11; choices for unstated numbers in docs/plans.md)."""

from django.db import migrations

# code, name, price (cents/month), monthly emails, daily emails, prospects, members, workspaces,
# mailboxes, LinkedIn seats included. None = unlimited.
PLANS = [
    ("free", "Free", 0, 1_000, 33, 1_000, 1, 1, 1, 0),
    ("pro", "Pro", 1499, 10_000, 333, 10_000, 2, 1, None, 0),
    ("business", "Business", 2999, 100_000, 3_333, 100_000, 4, 3, None, 0),
    ("enterprise", "Enterprise", 6999, 300_000, 10_000, 300_000, None, None, None, 0),
    ("self_hosted", "Self-hosted", 0, None, None, None, None, None, None, None),
]
FIELDS = (
    "code",
    "name",
    "monthly_price_cents",
    "monthly_emails",
    "daily_emails",
    "max_prospects",
    "max_members",
    "max_workspaces",
    "max_mailboxes",
    "linkedin_seats",
)


def add_plans(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    for row in PLANS:
        values = dict(zip(FIELDS, row, strict=True))
        Plan.objects.update_or_create(code=values.pop("code"), defaults=values)


def remove_plans(apps, schema_editor):
    apps.get_model("accounts", "Plan").objects.filter(code__in=[p[0] for p in PLANS]).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(add_plans, remove_plans)]
