from django.urls import path

from warmysender.mailboxes import views

urlpatterns = [
    path("mailboxes/", views.mailbox_list, name="mailbox-list"),
    path("mailboxes/new/", views.mailbox_create, name="mailbox-create"),
    path("mailboxes/new/test/", views.mailbox_test_unsaved, name="mailbox-test-unsaved"),
    path("mailboxes/<uuid:pk>/", views.mailbox_detail, name="mailbox-detail"),
    path("mailboxes/<uuid:pk>/edit/", views.mailbox_edit, name="mailbox-edit"),
    path("mailboxes/<uuid:pk>/limit/", views.mailbox_daily_limit, name="mailbox-daily-limit"),
    path("mailboxes/<uuid:pk>/sending/", views.mailbox_sending, name="mailbox-sending"),
    path("mailboxes/<uuid:pk>/test/", views.mailbox_test, name="mailbox-test"),
    path("mailboxes/<uuid:pk>/delete/", views.mailbox_delete, name="mailbox-delete"),
    path("mailboxes/<uuid:pk>/messages/", views.captured_list, name="mailbox-captured"),
    path(
        "mailboxes/<uuid:pk>/messages/<uuid:message_pk>/",
        views.captured_detail,
        name="mailbox-captured-detail",
    ),
]
