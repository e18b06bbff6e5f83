from django.urls import include, path

from warmysender.api.v1 import api
from warmysender.web.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", api.urls),
    path("", include("warmysender.accounts.urls")),
    path("", include("warmysender.prospects.urls")),
    path("", include("warmysender.sequences.urls")),
    path("", include("warmysender.mailboxes.urls")),
    path("", include("warmysender.email.urls")),
    path("", include("warmysender.inbox.urls")),
    path("", include("warmysender.linkedin.urls")),
    path("", include("warmysender.webhooks.urls")),
    path("", include("warmysender.web.urls")),
]
