from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from warmysender.accounts.models import Membership


def shell(request: HttpRequest) -> dict[str, Any]:
    """What every page's frame needs: the current workspace, role, and the switcher's entries."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    memberships = list(
        Membership.objects.select_related("workspace").filter(user=user).order_by("workspace__name")
    )
    return {
        "current_workspace": getattr(request, "workspace", None),
        "current_membership": getattr(request, "membership", None),
        "memberships": memberships,
    }
