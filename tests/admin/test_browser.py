"""The admin as one of the console's pages, in a real browser: its header carries the console's
navigation (styled, no console error or CSP violation), a card opens the admin and the admin
leads back to the card, and an admin refusal is the console's refusal page."""

from __future__ import annotations

from django.contrib.auth.models import User

from sessions_app.models import EndUser, ToolRouterSession
from tests.browser import BROWSER_TESTS, expect_statuses, log_in, shot

pytestmark = BROWSER_TESTS


def test_card_to_admin_and_back_with_the_console_navigation_in_the_admin_header(
    alice: EndUser, alices_session: ToolRouterSession, support_user: User, page: object
) -> None:
    card = f"/support/users/{alice.public_id}/"
    log_in(page, support_user, card)

    page.click("text=end user")
    page.wait_for_url(f"**/admin/sessions_app/enduser/{alice.pk}/change/")
    nav = page.locator("#header nav.console-nav")
    assert nav.locator("a").all_inner_texts() == ["Lookup", "Admin"]
    assert nav.evaluate("el => getComputedStyle(el).display") == "flex"
    assert page.locator("text=View site").count() == 0
    shot(page, "admin-browser", "enduser-view-only")

    page.click("a.support-card-link")
    page.wait_for_url(f"**{card}")
    assert page.locator("#user-card-title").inner_text() == alice.external_id

    page.click("text=Lookup")
    page.wait_for_url("**/support/")


def test_an_admin_refusal_is_the_console_s_refusal_page(auditor: User, page: object) -> None:
    expect_statuses(page, 403)
    log_in(page, auditor, "/audit/events/")
    page.goto("/admin/sessions_app/enduser/add/")
    assert page.locator("h1").inner_text() == "Refused"
    body = page.locator("main").inner_text()
    assert "You may not add end users." in body and "Session admin role" in body
    assert page.locator("header.topbar nav a").all_inner_texts()[:2] == [
        "Audit log",
        "Access report",
    ]
    shot(page, "admin-browser", "admin-refusal")
