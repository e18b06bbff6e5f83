from django.urls import path

from warmysender.webhooks import views

urlpatterns = [
    path("settings/webhooks/", views.webhook_list, name="webhook-list"),
    path("settings/webhooks/<uuid:pk>/", views.webhook_detail, name="webhook-detail"),
    path(
        "settings/webhooks/<uuid:pk>/deliveries/",
        views.webhook_deliveries,
        name="webhook-deliveries",
    ),
    path("settings/webhooks/<uuid:pk>/test/", views.webhook_test, name="webhook-test"),
    path("settings/webhooks/<uuid:pk>/delete/", views.webhook_delete, name="webhook-delete"),
]
