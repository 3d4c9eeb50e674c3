"""The connected-accounts panel in Chromium: Support sees the accounts and sends a reconnect link
(copied, then hidden again); a session admin disables an account after confirming.

Screenshots land in test-results/accounts-browser/.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from sessions_app.models import AuditEvent, EndUser
from sessions_app.tool_router import mcp_url
from tests.browser import BROWSER_TESTS, log_in, shot
from tests.factories import give_session, make_end_user

pytestmark = BROWSER_TESTS


@pytest.fixture
def live_user(catalog, session_admin: User) -> EndUser:
    end_user = make_end_user("usr_accounts01", "Ada Accounts")
    give_session(end_user, ["github", "gmail"], session_admin)
    return end_user


def _open_panel(page, user: User, end_user: EndUser):
    log_in(page, user, "/support/")
    page.goto(f"/support/users/{end_user.public_id}/")
    page.get_by_role("link", name="Show connected accounts").click()
    panel = page.locator(".accounts-panel")
    panel.locator("table.accounts").first.wait_for()
    return panel


@pytest.mark.parametrize("role", ["support_user", "session_admin"])
def test_support_sees_the_accounts_and_sends_a_reconnect_link(
    live_user: EndUser, role: str, request, emulator, settings, page
) -> None:
    staff = request.getfixturevalue(role)
    settings.CONNECT_LINK_SECONDS = 3
    session = live_user.sessions.get(status="active")
    github = emulator.set_connection(
        session.session_id, "github", "EXPIRED", status_reason="Refresh token expired"
    )
    emulator.set_connection(session.session_id, "gmail", "FAILED")
    emulator.create_account("usr_accounts01", "slack", "INACTIVE")

    panel = _open_panel(page, staff, live_user)

    text = panel.inner_text()
    assert mcp_url.masked_id_text(github) in text and github not in page.content()
    assert "Refresh token expired" in text
    expect(panel.locator(".badge-expired")).to_have_count(1)
    expect(panel.locator(".badge-failed")).to_have_count(1)
    expect(panel.locator(".accounts-other .badge-inactive")).to_have_count(1)
    may_disable = role == "session_admin"
    assert (panel.get_by_role("link", name="Disable…").count() > 0) is may_disable
    shot(page, "accounts-browser", f"01-panel-{role}")

    row = panel.locator("tr[data-toolkit=github]")
    row.get_by_role("button", name="Send reconnect link").click()
    link = row.locator("input.revealed-url")
    link.wait_for()
    url = link.input_value()
    assert "/_emulator/connect/" in url
    row.get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == url
    shot(page, "accounts-browser", f"02-link-{role}")
    event = AuditEvent.objects.get(action="connect_link.create")
    assert event.details["toolkit"] == "github" and url not in str(event.details)

    # Hidden again after CONNECT_LINK_SECONDS: the button is back, the URL gone.
    expect(row.get_by_role("button", name="Send reconnect link")).to_be_visible(timeout=6_000)
    assert url not in page.content()


def test_a_session_admin_disables_an_account_after_confirming(
    live_user: EndUser, session_admin: User, emulator, page
) -> None:
    session = live_user.sessions.get(status="active")
    github = emulator.set_connection(session.session_id, "github", "ACTIVE")

    panel = _open_panel(page, session_admin, live_user)
    panel.locator("tr[data-toolkit=github]").get_by_role("link", name="Disable…").click()
    confirm = panel.locator(".confirm")
    confirm.wait_for()
    assert "usr_accounts01" in confirm.inner_text()
    assert mcp_url.masked_id_text(github) in confirm.inner_text()
    confirm.locator("input[name=reason]").fill("compromised laptop")
    shot(page, "accounts-browser", "03-confirm")
    confirm.get_by_role("button", name="Yes, disable").click()

    expect(page.locator("#messages")).to_contain_text("is disabled")
    expect(panel.locator("tr[data-toolkit=github] .badge-inactive")).to_have_count(1)
    assert emulator.accounts[github]["status"] == "INACTIVE"
    event = AuditEvent.objects.get(action="connected_account.disable")
    assert event.reason == "compromised laptop"
    shot(page, "accounts-browser", "04-disabled")
