from django.urls import path

from warmysender.email import views

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe_page, name="unsubscribe"),
    path("t/o/<str:token>.gif", views.open_pixel, name="tracking-open"),
    path("t/c/<str:token>/", views.click_redirect, name="tracking-click"),
    path("settings/tracking-domains/", views.tracking_domains, name="tracking-domains"),
    path("settings/tracking-domains/add/", views.tracking_domain_add, name="tracking-domain-add"),
    path(
        "settings/tracking-domains/<int:pk>/verify/",
        views.tracking_domain_verify,
        name="tracking-domain-verify",
    ),
    path(
        "settings/tracking-domains/<int:pk>/remove/",
        views.tracking_domain_remove,
        name="tracking-domain-remove",
    ),
    path(
        "campaigns/<uuid:pk>/steps/<int:step_pk>/auto-optimize/",
        views.step_auto_optimize,
        name="step-auto-optimize",
    ),
    path(
        "campaigns/<uuid:pk>/tracking-domain/",
        views.campaign_tracking_domain,
        name="campaign-tracking-domain",
    ),
]
