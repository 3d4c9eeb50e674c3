from __future__ import annotations

from allauth.account import views as account_views
from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from sessions_app.health import healthz
from sessions_app.landing import landing

admin.site.site_header = "Tool Router Console"
admin.site.site_title = "Tool Router Console"
admin.site.index_title = "Sessions, toolkits and audit"
# One sign-in: the admin's login page sends staff to the console's (with ?next= back).
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("", landing, name="landing"),
    path("healthz", healthz, name="healthz"),
    # allauth's sign-in and sign-out, under the names the console has always used and allauth's.
    path("accounts/login/", account_views.login, name="login"),
    path("accounts/logout/", account_views.logout, name="logout"),
    path("accounts/login/", account_views.login, name="account_login"),
    path("accounts/logout/", account_views.logout, name="account_logout"),
    path("accounts/", include("sessions_app.signin.urls")),
    path("admin/", admin.site.urls),
    path("audit/", include("sessions_app.audit.urls")),
    path("jobs/", include("sessions_app.bulk.urls")),
    path("", include("sessions_app.support.urls")),
]

# Every PermissionDenied, the admin's included, renders the console's refusal page.
handler403 = "sessions_app.access.refused_view"
