from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from warmysender.accounts import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            # Links in emails use the configured public address, never the request's Host header.
            extra_email_context={"site_url": settings.SITE_URL},
            success_url=reverse_lazy("password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            extra_context={"timeout_hours": settings.PASSWORD_RESET_TIMEOUT // 3600}
        ),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            success_url=reverse_lazy("password_reset_complete")
        ),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation-accept"),
    path("workspaces/switch/", views.workspace_switch, name="workspace-switch"),
    path("workspaces/new/", views.workspace_create, name="workspace-create"),
    path("settings/team/", views.team, name="team"),
    path("settings/team/invite/", views.team_invite, name="team-invite"),
    path("settings/team/members/<int:pk>/role/", views.team_member_role, name="team-member-role"),
    path(
        "settings/team/members/<int:pk>/remove/",
        views.team_member_remove,
        name="team-member-remove",
    ),
    path(
        "settings/team/invitations/<int:pk>/revoke/",
        views.team_invitation_revoke,
        name="team-invitation-revoke",
    ),
    path("settings/api-keys/", views.api_keys, name="api-keys"),
    path("settings/api-keys/<uuid:pk>/revoke/", views.api_key_revoke, name="api-key-revoke"),
]
