from django.urls import path

from warmysender.prospects import views

urlpatterns = [
    path("prospects/", views.prospect_list, name="prospect-list"),
    path("prospects/new/", views.prospect_create, name="prospect-create"),
    path("prospects/add-to-list/", views.prospect_bulk_add, name="prospect-bulk-add"),
    path("prospects/<uuid:pk>/", views.prospect_detail, name="prospect-detail"),
    path("prospects/<uuid:pk>/edit/", views.prospect_edit, name="prospect-edit"),
    path("prospects/<uuid:pk>/delete/", views.prospect_delete, name="prospect-delete"),
    path("lists/", views.list_index, name="list-index"),
    path("lists/new/", views.list_create, name="list-create"),
    path("lists/<uuid:pk>/", views.list_detail, name="list-detail"),
    path("lists/<uuid:pk>/edit/", views.list_edit, name="list-edit"),
    path("lists/<uuid:pk>/delete/", views.list_delete, name="list-delete"),
    path("lists/<uuid:pk>/remove/", views.list_remove_prospects, name="list-remove-prospects"),
    path("import/", views.import_new, name="import-new"),
    path("import/<uuid:pk>/", views.import_detail, name="import-detail"),
    path("import/<uuid:pk>/map/", views.import_map, name="import-map"),
    path("import/<uuid:pk>/progress/", views.import_progress, name="import-progress"),
    path("import/<uuid:pk>/report.csv", views.import_report, name="import-report"),
    path("settings/blocklist/", views.blocklist, name="blocklist"),
    path("settings/blocklist/add/", views.blocklist_add, name="blocklist-add"),
    path("settings/blocklist/<uuid:pk>/remove/", views.blocklist_remove, name="blocklist-remove"),
]
