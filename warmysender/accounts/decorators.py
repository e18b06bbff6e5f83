"""View guards shared by every app's pages.

`workspace_required` is the one door for signed-in pages: anonymous users go to the log-in page
(with `next`), users without any workspace go to the page that creates one, and a membership
below `min_role` gets the friendly 403 page. Views behind it can rely on `request.workspace` and
`request.membership` being set; annotate them with `WorkspaceRequest` to say so to mypy.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast, overload

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from warmysender.accounts.models import Membership, Role, User, Workspace

V = TypeVar("V", bound=Callable[..., HttpResponse])


class WorkspaceRequest(HttpRequest):
    """A request that passed `workspace_required` (for type hints only)."""

    user: User
    workspace: Workspace
    membership: Membership


def forbidden(request: HttpRequest, message: str | None = None) -> HttpResponse:
    """The friendly 403 page."""
    return render(
        request,
        "403.html",
        {"message": message or "Your role in this workspace does not allow this."},
        status=403,
    )


@overload
def workspace_required(view: V, *, min_role: str = ...) -> V: ...
@overload
def workspace_required(view: None = None, *, min_role: str = ...) -> Callable[[V], V]: ...


def workspace_required(view: Any = None, *, min_role: str = Role.MEMBER) -> Any:
    """Guard a view; usable bare (`@workspace_required`) or as
    `@workspace_required(min_role=Role.ADMIN)`."""
    minimum = Role(min_role)

    def decorate(func: V) -> V:
        @wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership: Membership | None = getattr(request, "membership", None)
            if membership is None or getattr(request, "workspace", None) is None:
                return redirect("workspace-create")
            if not membership.has_role(minimum):
                return forbidden(
                    request,
                    f"This needs the {minimum.label.lower()} role or higher; your role in "
                    f"{membership.workspace.name} is {membership.get_role_display().lower()}.",
                )
            return func(request, *args, **kwargs)

        return cast(V, wrapper)

    if view is not None:
        return decorate(view)
    return decorate
