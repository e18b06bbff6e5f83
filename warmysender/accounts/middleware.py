from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from warmysender.accounts.models import Membership


class CurrentWorkspaceMiddleware:
    """Resolve the signed-in user's workspace and role once per request.

    Sets `request.workspace` and `request.membership` (both None for anonymous users or users
    without any membership). The workspace comes from the user's last switch and is re-checked
    against memberships, so a removed member loses access on the next request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.workspace = None  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        user = request.user
        if user.is_authenticated:
            qs = Membership.objects.select_related("workspace").filter(user=user)
            membership = None
            if user.current_workspace_id:
                membership = qs.filter(workspace_id=user.current_workspace_id).first()
            if membership is None:
                membership = qs.order_by("created_at").first()
            if membership is not None:
                request.workspace = membership.workspace  # type: ignore[attr-defined]
                request.membership = membership  # type: ignore[attr-defined]
        return self.get_response(request)
