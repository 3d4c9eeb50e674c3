"""The allauth adapters: nobody signs up; SSO_ONLY keeps password sign-in for break-glass
superusers only; SSO provisions staff by email domain and sets their roles from the groups claim
at every sign-in; MFA puts a second factor first when the console asks again."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.authentication import get_authentication_records
from allauth.account.internal.stagekit import clear_login
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from sessions_app import trail
from sessions_app.models import AuditEvent
from sessions_app.signin import mfa_secrets, sso
from sessions_app.signin.oidc import NONCE_STATE_KEY

# Session key: this sign-in's second factor was checked by the identity provider (amr/acr).
PROVIDER_MFA_SESSION_KEY = "signin_provider_mfa"


def refusal(
    request: HttpRequest,
    reason: str,
    *,
    title: str = "You cannot sign in here",
    details: dict[str, Any] | None = None,
    status: int = 403,
) -> HttpResponse:
    """Audit a refused sign-in (`auth.login_failed`) and answer the page that says why."""
    trail.record(
        action="auth.login_failed",
        outcome=AuditEvent.Outcome.FAILURE,
        actor=AnonymousUser(),
        request=request,
        reason=reason,
        details=details or {},
    )
    return render(
        request, "account/refused.html", {"title": title, "reason": reason}, status=status
    )


def _method(request: HttpRequest, user: AbstractBaseUser) -> str:
    records = get_authentication_records(request, user)
    return str(records[-1].get("method", "")) if records else ""


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Administrators add staff (or SSO does, SocialAccountAdapter.is_open_for_signup).
        return False

    def pre_login(self, request: HttpRequest, user: AbstractBaseUser, **kwargs: Any):
        response = super().pre_login(request, user, **kwargs)
        if response is not None:
            return response
        if (
            settings.SSO_ONLY
            and _method(request, user) == "password"
            and not (user.is_superuser and user.get_username() in settings.SSO_BREAK_GLASS_USERS)
        ):
            clear_login(request)
            return refusal(
                request,
                "Password sign-in is off: sign in with single sign-on.",
                details={"username": user.get_username(), "method": "password"},
            )
        return None

    def get_reauthentication_methods(self, user: AbstractBaseUser | AnonymousUser) -> list[dict]:
        # A second factor first (a passkey before a code): it is the stronger check, and the one
        # an SSO user has; the password last.
        order = {"mfa_reauthenticate:webauthn": 0, "mfa_reauthenticate": 1}
        methods = super().get_reauthentication_methods(user)
        return sorted(methods, key=lambda m: order.get(str(m["id"]), 2))

    def is_reauthentication_required(self, *, app: str, **kwargs: Any) -> bool:
        # Managing one's own factors needs a sign-in or check as recent as step-up does.
        from allauth.core import context

        from sessions_app.signin.stepup import recently_checked

        request = context.request
        if request is not None and recently_checked(request):
            return False
        return super().is_reauthentication_required(app=app, **kwargs)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def list_apps(
        self, request: HttpRequest | None, provider: str | None = None, client_id: str | None = None
    ) -> list:
        """The one SSO app, from the SSO_* settings (read at each call); none in the database."""
        from allauth.socialaccount.models import SocialApp

        if not sso.enabled() or provider not in (None, "openid_connect", sso.PROVIDER_ID):
            return []
        if client_id and client_id != settings.SSO_CLIENT_ID:
            return []
        return [
            SocialApp(
                provider="openid_connect",
                provider_id=sso.PROVIDER_ID,
                name=settings.SSO_PROVIDER_NAME,
                client_id=settings.SSO_CLIENT_ID,
                secret=settings.SSO_CLIENT_SECRET,
                settings={
                    "server_url": settings.SSO_ISSUER_URL,
                    "oauth_pkce_enabled": True,
                    "scope": settings.SSO_SCOPES,
                },
            )
        ]

    def is_open_for_signup(self, request: HttpRequest, sociallogin: Any) -> bool:
        return True  # pre_social_login has refused anyone who may not be provisioned

    def pre_social_login(self, request: HttpRequest, sociallogin: Any) -> None:
        claims = sso.claims_of(sociallogin.account.extra_data)
        expected = sociallogin.state.get(NONCE_STATE_KEY)
        if not expected or claims.get("nonce") != expected:
            self._refuse(request, "The identity provider's answer does not match this sign-in.")
        email = str(claims.get("email") or "")
        if not sso.domain_allowed(email):
            self._refuse(
                request,
                f"The email domain {sso.email_domain(email) or '(none)'} may not sign in here.",
                {"email_domain": sso.email_domain(email)},
            )
        groups = sso.groups_of(claims)
        wanted = sso.roles_for(groups)
        user = sociallogin.user
        if sociallogin.is_existing:
            # Roles follow the groups at every sign-in; no mapped group: no role, no entry.
            sso.set_roles(user, wanted, request=request, groups=groups)
        if not wanted:
            self._refuse(
                request,
                "None of your groups gives a role in this console; ask for one.",
                {"email_domain": sso.email_domain(email), "groups": groups[:50]},
            )
        sociallogin.console_roles = wanted
        sociallogin.console_groups = groups
        request.session[PROVIDER_MFA_SESSION_KEY] = sso.provider_did_mfa(claims)

    def _refuse(self, request: HttpRequest, reason: str, details: dict | None = None) -> None:
        raise ImmediateHttpResponse(
            refusal(request, reason, details={"method": "sso", **(details or {})})
        )

    def populate_user(self, request: HttpRequest, sociallogin: Any, data: dict) -> Any:
        user = super().populate_user(request, sociallogin, data)
        user.is_staff = True
        user.is_superuser = False  # never from a claim
        return user

    def save_user(self, request: HttpRequest, sociallogin: Any, form: Any = None) -> Any:
        user = super().save_user(request, sociallogin, form)
        sso.set_roles(
            user,
            getattr(sociallogin, "console_roles", []),
            request=request,
            groups=getattr(sociallogin, "console_groups", []),
        )
        return user

    def on_authentication_error(
        self,
        request: HttpRequest,
        provider: Any,
        error: Any = None,
        exception: Any = None,
        extra_context: Any = None,
    ) -> None:
        from requests import RequestException

        if isinstance(exception, RequestException):
            reason = "The identity provider could not be reached; try again in a few minutes."
        elif error == "cancelled":
            reason = "Single sign-on was cancelled."
        elif extra_context and "state_id" in extra_context and not exception:
            reason = "This single sign-on answer does not belong to a sign-in started here."
        else:
            reason = "The identity provider's answer could not be verified."
        raise ImmediateHttpResponse(
            refusal(
                request,
                reason,
                title="Single sign-on failed",
                details={"method": "sso", "error": str(error or type(exception).__name__)[:100]},
                status=400 if not isinstance(exception, RequestException) else 502,
            )
        )


class MFAAdapter(DefaultMFAAdapter):
    def get_totp_label(self, user: AbstractBaseUser) -> str:
        return user.get_username()

    def encrypt(self, text: str) -> str:
        # TOTP keys and recovery-code seeds are stored encrypted (sessions_app.signin.mfa_secrets).
        return mfa_secrets.encrypt(text)

    def decrypt(self, encrypted_text: str) -> str:
        return mfa_secrets.decrypt(encrypted_text)
