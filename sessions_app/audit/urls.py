from __future__ import annotations

from django.urls import path

from sessions_app.audit import views as audit_views

app_name = "audit"
urlpatterns = [
    path("", audit_views.event_list, name="index"),
    path("events/", audit_views.event_list, name="events"),
    path("access/", audit_views.access_report, name="access"),
    path("access/users/", audit_views.access_users, name="access_users"),
    path("access/toolkits/<slug:slug>/", audit_views.access_toolkit, name="access_toolkit"),
]
