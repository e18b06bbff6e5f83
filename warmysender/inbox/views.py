from __future__ import annotations

import uuid

from django.http import HttpResponse
from django.shortcuts import render

from warmysender.accounts.decorators import WorkspaceRequest, workspace_required
from warmysender.accounts.tenancy import get_in_workspace
from warmysender.inbox.thread import prospect_thread
from warmysender.prospects.models import Prospect


@workspace_required
def thread(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    prospect = get_in_workspace(Prospect, request.workspace, pk)
    return render(
        request,
        "inbox/thread.html",
        {"nav": "prospects", "prospect": prospect, "items": prospect_thread(prospect)},
    )
