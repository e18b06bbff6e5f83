"""Public pages reached from inside an email: no log-in, no CSRF (the link itself is the
credential, and RFC 8058 one-click POSTs come from mail providers)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from warmysender.email.unsubscribe import enrollment_for_token, unsubscribe


@csrf_exempt
def unsubscribe_page(request: HttpRequest, token: str) -> HttpResponse:
    enrollment = enrollment_for_token(token)
    if enrollment is None:
        return render(request, "email/unsubscribe.html", {"invalid": True}, status=404)
    context = {"workspace": enrollment.workspace.name, "email": enrollment.prospect.email}
    if request.method == "POST":
        # The one-click POST carries "List-Unsubscribe=One-Click"; the page's button does not.
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        unsubscribe(enrollment, now=timezone.now(), one_click=one_click)
        return render(request, "email/unsubscribe.html", {**context, "done": True})
    return render(request, "email/unsubscribe.html", context)
