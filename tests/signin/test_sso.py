"""Single sign-on against a real OpenID Connect provider (tests/oidc, Node's oidc-provider) on
loopback, driven by Chromium: provisioning by domain, roles from the groups claim (set again at
every sign-in), and every failure (wrong nonce or state, expired ID token, provider down) ending
on a clear page with nothing created."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from sessions_app.models import AuditEvent
from tests.browser import BROWSER_TESTS, expect_statuses
from tests.signin.oidc_provider import needs_provider

pytestmark = [*BROWSER_TESTS, needs_provider]

SAM = {
    "sub": "idp-0001",
    "email": "sam@example.com",
    "email_verified": True,
    "preferred_username": "sam.sso",
    "name": "Sam Single",
    "groups": ["console-support", "all-staff"],
}


def sso(page, provider, person, **state) -> None:
    provider.next_sign_in(person, **state)
    page.goto("/accounts/login/")
    page.click("#sso-login")


def roles_of(username: str) -> list[str]:
    user = User.objects.get(username=username)
    return sorted(user.groups.values_list("name", flat=True))


def refused(page, text: str) -> None:
    page.wait_for_selector("#signin-refused")
    assert text in page.inner_text("#signin-refused")


def test_a_new_member_of_console_support_signs_in_with_the_support_role(
    oidc_provider, page
) -> None:
    sso(page, oidc_provider, SAM)
    page.wait_for_url("**/support/")
    user = User.objects.get(username="sam.sso")
    assert user.is_staff and not user.is_superuser and user.email == "sam@example.com"
    assert roles_of("sam.sso") == ["Support"]
    login = AuditEvent.objects.filter(action="auth.login").latest("sequence")
    assert login.actor == user and login.details == {"methods": ["socialaccount"]}
    change = AuditEvent.objects.get(action="auth.sso_roles")
    assert change.details["before"] == [] and change.details["after"] == ["Support"]
    assert change.ip_address == "127.0.0.1"


def test_roles_follow_the_groups_at_every_sign_in_and_a_removed_group_ends_them(
    oidc_provider, page
) -> None:
    sso(page, oidc_provider, {**SAM, "groups": ["console-support", "console-audit"]})
    page.wait_for_url("**/support/")
    assert roles_of("sam.sso") == ["Auditor", "Support"]
    page.click("button:has-text('Log out')")
    page.wait_for_url("**/accounts/login/")

    sso(page, oidc_provider, {**SAM, "groups": ["console-audit"]})
    page.wait_for_url("**/audit/**")
    assert roles_of("sam.sso") == ["Auditor"]
    page.click("button:has-text('Log out')")

    expect_statuses(page, 403)
    sso(page, oidc_provider, {**SAM, "groups": ["all-staff"]})
    refused(page, "None of your groups gives a role")
    assert roles_of("sam.sso") == []
    changes = AuditEvent.objects.filter(action="auth.sso_roles").order_by("sequence")
    assert [e.details["removed"] for e in changes] == [[], ["Support"], ["Auditor"]]


@pytest.mark.parametrize(
    ("person", "text"),
    [
        ({**SAM, "email": "sam@elsewhere.test"}, "The email domain elsewhere.test may not"),
        ({**SAM, "groups": ["all-staff"]}, "None of your groups gives a role"),
        ({**SAM, "groups": "console-superusers", "is_superuser": True}, "None of your groups"),
    ],
    ids=["domain", "no-mapped-group", "superuser-claim"],
)
def test_who_may_not_be_provisioned_gets_a_clear_refusal_and_no_account(
    oidc_provider, person, text, page
) -> None:
    expect_statuses(page, 403)
    sso(page, oidc_provider, person)
    refused(page, text)
    assert not User.objects.filter(username="sam.sso").exists()
    event = AuditEvent.objects.filter(action="auth.login_failed").latest("sequence")
    assert event.details["method"] == "sso" and text[:20] in event.reason


@pytest.mark.parametrize(
    ("tamper", "text"),
    [
        ("wrong-nonce", "does not match this sign-in"),
        ("expired", "could not be verified"),
    ],
)
def test_a_forged_or_expired_id_token_is_refused(oidc_provider, tamper, text, page) -> None:
    expect_statuses(page, 400, 403)
    sso(page, oidc_provider, SAM, tamper=tamper)
    refused(page, text)
    assert not User.objects.filter(username="sam.sso").exists()


def test_an_answer_with_a_wrong_state_is_refused(
    oidc_provider, live_server, chromium, page
) -> None:
    """Login CSRF: the provider's answer to someone else's sign-in (its own state and code),
    opened in a browser that started a sign-in of its own."""
    other = chromium.new_context(base_url=live_server.url)
    attacker = other.new_page()
    callbacks: list[str] = []
    attacker.on("request", lambda r: "/login/callback/" in r.url and callbacks.append(r.url))
    sso(
        attacker,
        oidc_provider,
        {**SAM, "sub": "idp-9999", "preferred_username": "mallory", "email": "mal@example.com"},
    )
    attacker.wait_for_url("**/support/")
    other.close()

    expect_statuses(page, 400)
    sso(page, oidc_provider, SAM)  # the victim's own sign-in, then the attacker's answer
    page.wait_for_url("**/support/")
    page.click("button:has-text('Log out')")
    page.goto(callbacks[0])
    refused(page, "does not belong to a sign-in started here")
    assert AuditEvent.objects.filter(action="auth.login", actor__username="sam.sso").count() == 1


def test_a_provider_that_is_down_gives_a_clear_error_and_creates_nothing(
    oidc_provider, page
) -> None:
    oidc_provider.stop()
    expect_statuses(page, 502)
    page.goto("/accounts/login/")
    page.click("#sso-login")
    refused(page, "could not be reached")
    assert not User.objects.filter(username="sam.sso").exists()
    event = AuditEvent.objects.filter(action="auth.login_failed").latest("sequence")
    assert event.details["method"] == "sso"


def test_provider_mfa_counts_only_when_trusted_and_shown_in_amr(
    oidc_provider, settings, page
) -> None:
    settings.MFA_REQUIRED = True
    settings.SSO_TRUST_PROVIDER_MFA = True
    sso(page, oidc_provider, SAM, amr=["pwd"])
    page.wait_for_url("**/accounts/2fa/")  # no second factor shown: enrol here
    page.click("button:has-text('Log out')")
    page.context.clear_cookies()  # a new sign-in at the provider, with its own amr
    sso(page, oidc_provider, SAM, amr=["pwd", "otp"])
    page.wait_for_url("**/support/")
