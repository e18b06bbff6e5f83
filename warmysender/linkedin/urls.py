from django.urls import path

from warmysender.linkedin import views

app_name = "linkedin"

urlpatterns = [
    path("linkedin/accounts/", views.account_list, name="accounts"),
    path("linkedin/accounts/connect/", views.connect_wizard, name="connect"),
    path("linkedin/accounts/<uuid:pk>/", views.account_detail, name="detail"),
    path("linkedin/accounts/<uuid:pk>/login/", views.credentials_login, name="login"),
    path("linkedin/accounts/<uuid:pk>/return/", views.returned, name="returned"),
    path("linkedin/accounts/<uuid:pk>/reconnect/", views.reconnect, name="reconnect"),
    path("linkedin/accounts/<uuid:pk>/sync/", views.sync, name="sync"),
    path("linkedin/accounts/<uuid:pk>/disconnect/", views.disconnect, name="disconnect"),
    path("linkedin/accounts/<uuid:pk>/proxy/", views.change_proxy, name="proxy"),
    path("linkedin/reconnect/<str:token>/", views.reconnect_from_email, name="reconnect_email"),
    path("linkedin/hooks/unipile/", views.unipile_webhook, name="webhook"),
    path("linkedin/hooks/hosted/<str:token>/", views.hosted_notify, name="hosted_notify"),
]
