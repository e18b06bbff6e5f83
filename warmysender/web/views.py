from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


def home(request: HttpRequest) -> HttpResponse:
    """`/`: the prospects page for signed-in people, the log-in page for everyone else."""
    if request.user.is_authenticated:
        return redirect("/prospects/")
    return redirect("login")
