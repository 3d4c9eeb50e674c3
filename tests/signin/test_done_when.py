"""Issue 17's "done when", end to end in Chromium: a new staff member in group console-support
signs in through SSO (the test provider), enrols a passkey, looks a user up and reveals a URL
after step-up with that passkey."""

from __future__ import annotations

import time

import pytest

from sessions_app.models import AuditEvent, EndUser
from tests.browser import BROWSER_TESTS
from tests.factories import make_end_user, store_session
from tests.signin.oidc_provider import needs_provider
from tests.signin.test_passkeys import virtual_authenticator
from tests.signin.test_sso import SAM, sso

pytestmark = [*BROWSER_TESTS, needs_provider]

MCP_URL = "https://mcp.example.test/tool_router/trs_donewhen01/mcp?k=DONEWHENSECRET"


@pytest.fixture
def rita(db: None) -> EndUser:
    end_user = make_end_user("usr_donewhen", "Rita Done")
    store_session(end_user, "trs_donewhen01", mcp_url=MCP_URL)
    return end_user


def test_sso_sign_in_passkey_enrolment_and_a_reveal_after_step_up(
    rita, oidc_provider, settings, page
) -> None:
    virtual_authenticator(page)
    sso(page, oidc_provider, SAM)
    page.wait_for_url("**/support/")

    # A fresh SSO sign-in is recent enough to add a passkey without asking again.
    page.goto("/accounts/2fa/webauthn/add/")
    page.check("#id_passwordless")
    page.click("#mfa_webauthn_add")
    page.wait_for_url(lambda url: "/webauthn/add/" not in url)  # the form was answered

    # Time passes beyond the step-up window.
    settings.STEP_UP_REQUIRED = True
    settings.STEP_UP_SECONDS = 4
    time.sleep(5)

    page.goto(f"/support/?q={rita.external_id}")
    page.click("#results a.result-link")
    page.locator("#user-card").get_by_role("button", name="Reveal").click()
    page.wait_for_url("**/accounts/2fa/webauthn/reauthenticate/**")
    assert not AuditEvent.objects.filter(action="mcp_url.reveal").exists()
    page.click("#mfa_webauthn_reauthenticate")
    revealed = page.locator("input.revealed-url")
    revealed.wait_for()
    assert revealed.input_value() == MCP_URL
    assert AuditEvent.objects.filter(action="auth.step_up").count() == 1
    [reveal] = AuditEvent.objects.filter(action="mcp_url.reveal")
    assert reveal.actor_username == "sam.sso"
