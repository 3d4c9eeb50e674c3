from __future__ import annotations

from django.urls import path

from sessions_app.support import account_views, activity, attention_views, views

app_name = "sessions_app"
urlpatterns = [
    path("support/", views.support_lookup, name="support_lookup"),
    path("support/attention/", attention_views.support_attention, name="support_attention"),
    path("support/users/<uuid:public_id>/", views.support_user_card, name="support_user_card"),
    path("support/users/<uuid:public_id>/row/", views.support_user_row, name="support_user_row"),
    path(
        "support/users/<uuid:public_id>/refresh/",
        views.support_session_refresh,
        name="support_session_refresh",
    ),
    path(
        "support/sessions/<uuid:public_id>/reveal/",
        views.support_mcp_reveal,
        name="support_mcp_reveal",
    ),
    path(
        "support/sessions/<uuid:public_id>/connections/",
        views.support_session_connections,
        name="support_session_connections",
    ),
    path(
        "support/sessions/<uuid:public_id>/connections/check/",
        views.support_session_connections_check,
        name="support_session_connections_check",
    ),
    # Connected accounts: the panel, reconnect links, enabling and disabling (account_views).
    path(
        "support/sessions/<uuid:public_id>/accounts/",
        account_views.support_session_accounts,
        name="support_session_accounts",
    ),
    path(
        "support/sessions/<uuid:public_id>/accounts/check/",
        account_views.support_session_accounts_check,
        name="support_session_accounts_check",
    ),
    path(
        "support/sessions/<uuid:public_id>/accounts/<str:account>/status/",
        account_views.support_connected_account_status,
        name="support_connected_account_status",
    ),
    path(
        "support/sessions/<uuid:public_id>/toolkits/<slug:toolkit>/link/",
        account_views.support_connect_link,
        name="support_connect_link",
    ),
]

# The card's activity: recent tool executions and the timeline (sessions_app/support/activity.py).
urlpatterns += [
    path(
        "support/users/<uuid:public_id>/executions/",
        activity.support_user_executions,
        name="support_user_executions",
    ),
    path(
        "support/users/<uuid:public_id>/executions/<str:log_id>/",
        activity.support_execution_detail,
        name="support_execution_detail",
    ),
    path(
        "support/users/<uuid:public_id>/timeline/",
        activity.support_user_timeline,
        name="support_user_timeline",
    ),
]
