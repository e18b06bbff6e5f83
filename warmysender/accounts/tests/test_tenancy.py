from django.apps import apps
from django.db import models

from warmysender.accounts.models import TenantModel, Workspace

# Tables that are not owned by one workspace, and why.
GLOBAL_MODELS = {
    "accounts.user": "a person may belong to several workspaces",
    "accounts.workspace": "the tenant itself",
    "accounts.plan": "plans are shared reference data",
    "accounts.subscription": "billed per account (the workspace owner), covering all its workspaces",
    "accounts.loginthrottle": "keyed by email and IP before anyone is signed in",
}


def test_every_tenant_model_has_a_non_null_workspace_column() -> None:
    ours = [m for m in apps.get_models() if m.__module__.startswith("warmysender.")]
    assert len(ours) > 10
    for model in ours:
        label = model._meta.label_lower
        if label in GLOBAL_MODELS:
            continue
        assert issubclass(model, TenantModel), f"{label} must extend TenantModel"
        field = model._meta.get_field("workspace")
        assert isinstance(field, models.ForeignKey), label
        assert field.related_model is Workspace, label
        assert field.null is False, f"{label}.workspace must be NOT NULL"


def test_the_exemption_list_names_only_existing_models() -> None:
    labels = {m._meta.label_lower for m in apps.get_models()}
    assert set(GLOBAL_MODELS) <= labels
