"""The support card's recent tool executions, one execution in full, and the timeline, in a real
browser (Debian's Chromium via Playwright): any console error or CSP violation fails the page.

Screenshots land in test-results/support-activity/.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from sessions_app.models import AuditEvent, EndUser
from sessions_app.tool_router import executions as tool_runs
from tests.browser import BROWSER_TESTS, log_in, shot
from tests.factories import give_session, make_end_user

pytestmark = BROWSER_TESTS

TOKEN = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"


@pytest.fixture
def busy_user(catalog, session_admin: User) -> EndUser:
    """An end user whose github session ran three tools: one success, one failure, and one whose
    arguments carry a token."""
    end_user = make_end_user("usr_busy01", "Bo Busy")
    session = give_session(end_user, ["github"], session_admin)
    catalog.set_connection(session.session_id, "github", "ACTIVE")
    for tool, arguments in (
        ("GITHUB_GET_THE_AUTHENTICATED_USER", None),
        ("GITHUB_CREATE_AN_ISSUE", None),
        ("GITHUB_CREATE_AN_ISSUE", {"owner": "o", "repo": "r", "title": f"key {TOKEN}"}),
    ):
        outcome = tool_runs.tool_router_session_execute(
            session=session, tool_slug=tool, arguments=arguments
        )
        assert outcome.ran, outcome.message
    return end_user


@pytest.mark.parametrize("role", ["support", "session admin"])
def test_executions_chart_detail_and_timeline_on_the_card(
    busy_user: EndUser, support_user: User, session_admin: User, role: str, page
) -> None:
    user = support_user if role == "support" else session_admin
    slug = role.replace(" ", "-")
    log_in(page, user, "/support/")
    page.goto(f"/support/users/{busy_user.public_id}/")
    card = page.locator("#user-card")
    card.wait_for()

    # The timeline is on the card: the session's creation, by whom.
    timeline = card.locator(".timeline-list")
    expect(timeline).to_contain_text("Session created")
    expect(timeline).to_contain_text(session_admin.username)

    # The executions panel comes in place, with its chart.
    page.evaluate("window.__sameDocument = true")
    card.get_by_role("link", name="Show recent tool executions").click()
    rows = card.locator("tr.execution-row")
    expect(rows).to_have_count(3)
    expect(card.locator("tr.execution-failed")).to_have_count(1)
    assert card.locator("svg.execution-chart-svg rect.chart-failed").count() == 1
    assert card.locator("svg.execution-chart-svg rect.chart-ok").count() == 1
    shot(page, "support-activity", f"{slug}-01-executions")

    # Filter to the failures.
    card.locator("select[name=status]").select_option("failed")
    card.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Missing required argument")
    card.locator("select[name=status]").select_option("")
    card.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(3)

    # Open the newest (the one carrying a token): redacted, audited.
    rows.first.locator("button.execution-link").click()
    detail = card.locator(".execution-detail-panel")
    expect(detail).to_contain_text("[redacted]")
    expect(detail).to_contain_text("GITHUB_CREATE_AN_ISSUE")
    assert TOKEN not in page.content()
    assert page.evaluate("window.__sameDocument") is True
    assert AuditEvent.objects.filter(action="tool_execution.view", actor=user).count() == 1
    shot(page, "support-activity", f"{slug}-02-detail")

    # The card opened again shows that in its timeline.
    page.goto(f"/support/users/{busy_user.public_id}/")
    expect(page.locator(".timeline-list li").first).to_contain_text("Execution log opened")
    shot(page, "support-activity", f"{slug}-03-timeline")


def test_without_javascript_the_panel_and_detail_are_pages(
    busy_user: EndUser, support_user: User, chromium, live_server
) -> None:
    context = chromium.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, support_user, "/support/")
        page.goto(f"/support/users/{busy_user.public_id}/")
        page.get_by_role("link", name="Show recent tool executions").click()
        page.wait_for_url("**/executions/")
        assert page.locator("tr.execution-row").count() == 3
        page.locator("tr.execution-row button.execution-link").first.click()
        page.wait_for_url("**/executions/log_*/")
        assert "[redacted]" in page.locator(".execution-detail-panel").inner_text()
        assert TOKEN not in page.content()
        shot(page, "support-activity", "no-javascript-detail")
    finally:
        context.close()
