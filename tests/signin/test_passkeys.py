"""Passkeys in Chromium with its virtual authenticator (the WebAuthn domain of the DevTools
protocol): a staff member enrols one, then signs in with it and nothing else."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.contrib.auth.models import User

from sessions_app.models import AuditEvent
from tests.browser import BROWSER_TESTS, log_in

pytestmark = BROWSER_TESTS


def virtual_authenticator(page) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )


def test_a_passkey_is_enrolled_and_then_signs_in_alone(support_user: User, page) -> None:
    virtual_authenticator(page)
    log_in(page, support_user, "/support/")
    page.goto("/accounts/2fa/webauthn/add/")
    page.check("#id_passwordless")
    page.click("#mfa_webauthn_add")
    # The add page's own URL matches "**/accounts/2fa/**" too: wait until the form was answered.
    page.wait_for_url(lambda url: "/webauthn/add/" not in url)
    [passkey] = Authenticator.objects.filter(user=support_user, type="webauthn")
    assert passkey.wrap().is_passwordless
    added = AuditEvent.objects.filter(action="auth.mfa_added", actor=support_user)
    assert "webauthn" in {e.details["type"] for e in added}

    page.goto("/support/")
    page.click("button:has-text('Log out')")
    page.wait_for_url("**/accounts/login/**")
    page.click("#passkey_login")
    page.wait_for_url("**/support/")
    login = AuditEvent.objects.filter(action="auth.login", actor=support_user).latest("sequence")
    assert "mfa" in login.details["methods"] and "password" not in login.details["methods"]
