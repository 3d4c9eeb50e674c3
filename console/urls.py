from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from sessions_app.health import healthz
from sessions_app.landing import landing

admin.site.site_header = "Tool Router Console"
admin.site.site_title = "Tool Router Console"
admin.site.index_title = "Sessions, toolkits and audit"

urlpatterns = [
    path("", landing, name="landing"),
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("audit/", include("sessions_app.audit.urls")),
    path("jobs/", include("sessions_app.bulk.urls")),
    path("", include("sessions_app.support.urls")),
]

# Every PermissionDenied, the admin's included, renders the console's refusal page.
handler403 = "sessions_app.access.refused_view"
