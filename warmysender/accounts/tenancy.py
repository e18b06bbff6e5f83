"""Scoped lookups. Every read of a tenant row by id goes through `get_in_workspace`, so another
workspace's id behaves exactly like a missing one."""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.http import Http404

from warmysender.accounts.models import Workspace

M = TypeVar("M", bound=models.Model)


def get_in_workspace(model: type[M], workspace: Workspace, pk: Any, **filters: Any) -> M:
    """The row with `pk` in `workspace`, or Http404 (also for malformed ids)."""
    try:
        return model._default_manager.get(workspace=workspace, pk=pk, **filters)
    except (ObjectDoesNotExist, ValidationError, ValueError, TypeError) as exc:
        raise Http404(f"No {model._meta.verbose_name} with this id.") from exc
