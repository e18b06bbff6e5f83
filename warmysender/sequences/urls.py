from django.urls import path

from warmysender.sequences import views

urlpatterns = [
    path("campaigns/", views.campaign_list, name="campaign-list"),
    path("campaigns/new/", views.campaign_create, name="campaign-create"),
    path("campaigns/editor-status/", views.campaign_editor_status, name="campaign-editor-status"),
    path("campaigns/<uuid:pk>/", views.campaign_detail, name="campaign-detail"),
    path("campaigns/<uuid:pk>/edit/", views.campaign_edit, name="campaign-edit"),
    path("campaigns/<uuid:pk>/stats/", views.campaign_stats_partial, name="campaign-stats"),
    path("campaigns/<uuid:pk>/preview/", views.campaign_preview, name="campaign-preview"),
    path("campaigns/<uuid:pk>/start/", views.campaign_start, name="campaign-start"),
    path("campaigns/<uuid:pk>/pause/", views.campaign_pause, name="campaign-pause"),
    path("campaigns/<uuid:pk>/enroll/", views.campaign_enroll, name="campaign-enroll"),
    path(
        "campaigns/<uuid:pk>/template-fixed/",
        views.campaign_template_fixed,
        name="campaign-template-fixed",
    ),
    path(
        "campaigns/<uuid:pk>/actions/<uuid:action_pk>/resolve/",
        views.campaign_resolve,
        name="campaign-resolve",
    ),
]
