"""The sign-in URLs under /accounts/: allauth's views the console uses, and nothing else.

allauth's own `allauth.urls` would also serve sign-up, email management, password reset by email,
sign-in codes and connecting other accounts; none of these is how staff accounts work here (an
administrator or SSO makes them), so their names answer 404 for everyone (allauth's code still
reverses some of them, e.g. the sign-in page's sign-up link).
"""

from __future__ import annotations

from allauth.account import views as account_views
from allauth.socialaccount import views as social_views
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import include, path


@login_not_required
def not_here(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    raise Http404("Staff accounts are managed by administrators and single sign-on.")


urlpatterns = [
    path("inactive/", account_views.account_inactive, name="account_inactive"),
    path("reauthenticate/", account_views.reauthenticate, name="account_reauthenticate"),
    path("password/change/", account_views.password_change, name="account_change_password"),
    path("2fa/", include("allauth.mfa.urls")),
    path(
        "3rdparty/login/cancelled/",
        social_views.login_cancelled,
        name="socialaccount_login_cancelled",
    ),
    path("3rdparty/login/error/", social_views.login_error, name="socialaccount_login_error"),
    # /accounts/oidc/<provider_id>/login/ and .../login/callback/ (SSO).
    path("", include("allauth.socialaccount.providers.openid_connect.urls")),
    # Reversed by allauth, served to nobody.
    path("signup/", not_here, name="account_signup"),
    path("email/", not_here, name="account_email"),
    path("password/set/", not_here, name="account_set_password"),
    path("password/reset/", not_here, name="account_reset_password"),
    path("reauthenticate/code/", not_here, name="account_request_reauthentication_code"),
    path(
        "reauthenticate/code/confirm/",
        not_here,
        name="account_confirm_reauthentication_code",
    ),
    path("login/code/", not_here, name="account_request_login_code"),
    path("login/code/confirm/", not_here, name="account_confirm_login_code"),
    path("3rdparty/", not_here, name="socialaccount_connections"),
    path("3rdparty/signup/", not_here, name="socialaccount_signup"),
]
