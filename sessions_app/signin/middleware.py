"""MFA_REQUIRED: a signed-in staff user without a second factor (TOTP or a passkey, or an SSO
sign-in whose provider checked one and is trusted to) is sent to enrol before any other page."""

from __future__ import annotations

from collections.abc import Callable

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from sessions_app.signin import sso
from sessions_app.signin.adapters import PROVIDER_MFA_SESSION_KEY

# Sign-in, sign-out, enrolment and asking again live under /accounts/.
_EXEMPT_PREFIXES = ("/accounts/", "/static/", "/healthz")


def has_second_factor(request: HttpRequest) -> bool:
    if request.session.get(PROVIDER_MFA_SESSION_KEY):
        return True
    return Authenticator.objects.filter(
        user_id=request.user.pk,
        type__in=[Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN],
    ).exists()


def enrolment_needed(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return (
        settings.MFA_REQUIRED
        and user is not None
        and user.is_authenticated
        and user.is_staff
        and not request.path.startswith(_EXEMPT_PREFIXES)
        and not has_second_factor(request)
    )


class MfaEnrolmentMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if enrolment_needed(request):
            url = reverse("mfa_index")
            # HtmxMiddleware runs after this one: read its header directly.
            if request.headers.get("HX-Request") == "true":
                response = HttpResponse(status=204)
                response["HX-Redirect"] = url
                return response
            messages.warning(
                request,
                "Your account needs a second factor before you go on: set up an authenticator "
                "app or a passkey.",
            )
            return HttpResponseRedirect(url)
        return self.get_response(request)


class SsoFormActionMiddleware:
    """The sign-in pages' SSO button posts to the console, which redirects to the identity
    provider: CSP's form-action covers that redirect, so those pages allow the provider's origin
    (SSO_ISSUER_URL's) besides 'self'. Every other page keeps form-action 'self' alone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        origin = sso.issuer_origin()
        if origin and request.path.startswith("/accounts/"):
            response._csp_update = {"form-action": [origin]}  # type: ignore[attr-defined]
        return response
