"""The support console in a real browser: Debian's Chromium driven by Playwright, no download.

Screenshots of each step land in test-results/support-browser/.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from sessions_app.models import AuditEvent, EndUser
from sessions_app.tool_router.mcp_url import short_id
from tests.browser import BROWSER_TESTS, expect_statuses, log_in, shot
from tests.factories import give_session, make_end_user, store_session

MCP_URL = "https://mcp.example.test/tool_router/trs_browser0001/mcp?k=BROWSERSECRET"

pytestmark = BROWSER_TESTS


@pytest.fixture
def people(db: None) -> EndUser:
    first = make_end_user("usr_browser01", "Bea Browser", "bea@example.com")
    store_session(first, "trs_browser0001", mcp_url=MCP_URL)
    make_end_user("usr_browser02", "Bo Browser")
    make_end_user("usr_other", "Otto Other")
    return first


def _shot(page, name: str) -> None:
    shot(page, "support-browser", name)


def _login(page, user: User) -> None:
    log_in(page, user, "/support/")


def test_support_finds_a_user_opens_the_card_reveals_copies_and_sees_it_masked_again(
    people: EndUser, support_user: User, settings, page
) -> None:
    settings.SUPPORT_REVEAL_SECONDS = 3

    # Log in.
    page.goto("/support/")
    assert "/accounts/login/" in page.url
    page.fill("#id_login", support_user.username)
    page.fill("#id_password", "pw-" + support_user.username)
    _shot(page, "01-login")
    page.click("button[type=submit]")
    page.wait_for_url("**/support/")
    assert page.evaluate("document.activeElement && document.activeElement.id") == "q"
    assert page.locator(".banner-emulated").is_visible()
    _shot(page, "02-lookup")

    # Type part of an external id: results arrive without a page load.
    page.evaluate("window.__sameDocument = true")
    page.locator("#q").press_sequentially("usr_brow", delay=40)
    rows = page.locator("#results a.result-link")
    expect(rows).to_have_count(2)
    assert rows.all_inner_texts() == ["usr_browser01", "usr_browser02"]
    assert page.evaluate("window.__sameDocument") is True
    assert "q=usr_brow" in page.url
    _shot(page, "03-results")

    # Enter opens the first result's card, still in the same document.
    page.locator("#q").press("Enter")
    card = page.locator("#user-card")
    card.wait_for()
    assert page.evaluate("window.__sameDocument") is True
    assert f"/support/users/{people.public_id}/" in page.url
    assert "trs_browser0001" in card.inner_text()
    assert page.locator("#card > #user-card").count() == 1
    assert MCP_URL not in page.content()
    _shot(page, "04-card")

    # Reveal: the full URL appears, and the reveal is in the audit log.
    card.get_by_role("button", name="Reveal").click()
    revealed = page.locator("input.revealed-url")
    revealed.wait_for()
    assert revealed.input_value() == MCP_URL
    assert AuditEvent.objects.filter(action="mcp_url.reveal", outcome="success").count() == 1
    _shot(page, "05-revealed")

    # Copy it to the clipboard.
    page.locator(".mcp-revealed button[data-copy]").click()
    page.locator(".mcp-revealed button.copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == MCP_URL
    _shot(page, "06-copied")

    # It masks itself again, and the mask works like the first one.
    revealed.wait_for(state="detached", timeout=10_000)
    assert card.locator("code.masked").is_visible()
    assert MCP_URL not in page.content()
    _shot(page, "07-masked-again")
    card.get_by_role("button", name="Reveal").click()
    page.locator("input.revealed-url").wait_for()
    assert AuditEvent.objects.filter(action="mcp_url.reveal", outcome="success").count() == 2


def test_without_javascript_the_search_is_a_plain_form(
    people: EndUser, support_user: User, chromium, live_server
) -> None:
    context = chromium.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        _login(page, support_user)
        page.fill("#q", "usr_other")
        page.click("#search-form button[type=submit]")
        page.wait_for_url("**/support/?q=usr_other")
        assert page.locator("#results a.result-link").all_inner_texts() == ["usr_other"]
        _shot(page, "08-no-javascript")
    finally:
        context.close()


@pytest.fixture
def composio_user(catalog, session_admin: User) -> EndUser:
    """An end user whose session exists at the emulator (made by the session service)."""
    end_user = make_end_user("usr_live01", "Liv Live")
    give_session(end_user, ["github", "gmail"], session_admin)
    return end_user


def _open_live_card(page, user: User):
    """Log in as `user`, look the live user up and open the first result's card."""
    _login(page, user)
    page.locator("#q").press_sequentially("usr_live", delay=30)
    page.locator("#results a.result-link").first.click()
    card = page.locator("#user-card")
    card.wait_for()
    return card


def test_a_slow_composio_holds_up_only_the_connection_badges(
    composio_user: EndUser, support_user: User, emulator, settings, page
) -> None:
    session = composio_user.sessions.get(status="active")
    emulator.set_connection(session.session_id, "github", "ACTIVE")
    emulator.faults.latency(3.0, endpoint="session.toolkits")
    card = _open_live_card(page, support_user)

    card.get_by_role("link", name="Check connections").click()
    page.locator(".htmx-request").first.wait_for()  # the check is under way...
    card.get_by_role("button", name="Reveal").click()  # ...and the page still answers
    page.locator("input.revealed-url").wait_for(timeout=2_500)
    _shot(page, "09-reveal-while-composio-is-slow")

    badge = card.locator(".connection-list .badge-active")
    badge.wait_for(timeout=15_000)
    assert "github" in card.locator(".connection-list").inner_text()
    assert "not connected" in card.locator(".connection-list").inner_text()
    _shot(page, "10-connections")


def test_a_session_admin_refreshes_from_the_card_and_the_row_follows(
    composio_user: EndUser, session_admin: User, emulator, page
) -> None:
    old = composio_user.sessions.get(status="active")
    _login(page, session_admin)
    page.locator("#q").press_sequentially("usr_live", delay=30)
    row = page.locator(f"#row-{composio_user.public_id}")
    row.wait_for()
    assert short_id(old.session_id) in row.inner_text()
    row.locator("a.result-link").click()
    card = page.locator("#user-card")
    card.wait_for()

    card.get_by_role("link", name="Refresh session…").click()
    confirm = page.get_by_role("button", name="Yes, refresh")
    confirm.wait_for()
    _shot(page, "11-refresh-confirm")
    confirm.click()

    page.locator("#messages .message-success").wait_for()
    new = composio_user.sessions.get(status="active")
    assert new.session_id != old.session_id
    # The HX-Trigger event made the list row fetch itself again.
    expect(row).to_contain_text(short_id(new.session_id))
    assert new.session_id in card.inner_text()
    assert old.session_id in card.locator("table.history").inner_text()
    _shot(page, "12-refreshed")


def test_the_badges_say_how_old_they_are_and_check_now_is_limited(
    composio_user: EndUser, support_user: User, emulator, settings, page
) -> None:
    expect_statuses(page, 429)  # the second check now is refused: the limit under test
    settings.CONNECTION_CHECK_NOW_SECONDS = 30
    session = composio_user.sessions.get(status="active")
    card = _open_live_card(page, support_user)
    card.get_by_role("link", name="Check connections").click()
    expect(card.locator(".connections-age")).to_have_text(re.compile(r"checked \d+ s ago"))
    assert "not connected" in card.locator(".connection-list").inner_text()

    # Check now asks Composio past the cache, in place.
    emulator.set_connection(session.session_id, "github", "ACTIVE")
    card.get_by_role("button", name="Check now").click()
    card.locator(".connection-list .badge-active").wait_for()
    expect(card.locator(".connections-meta .htmx-indicator")).to_have_css("opacity", "0")
    _shot(page, "13-checked-now")

    # Again at once: refused in place, saying when, the badges still there.
    card.get_by_role("button", name="Check now").click()
    notice = card.locator(".connections .message-warning")
    expect(notice).to_contain_text("you may check again in")
    assert card.locator(".connection-list .badge-active").count() == 1
    _shot(page, "14-check-now-limited")
