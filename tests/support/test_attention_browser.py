"""Users needing attention in a real browser (Debian's Chromium via Playwright), for each role
that may open it: from the landing page's count to the list, through its pager (HTMX, the
address kept), to the user's support card. Any console error or CSP violation fails the test.

Screenshots land in test-results/support-attention/.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from sessions_app.models import AttentionState, EndUser
from sessions_app.tool_router import attention
from tests.browser import BROWSER_TESTS, log_in, shot
from tests.factories import give_session, make_end_user, make_end_users

pytestmark = BROWSER_TESTS


@pytest.fixture
def expired_user(catalog, session_admin: User) -> EndUser:
    """A github user whose account expired, found by the sweep; behind them 55 older problems
    (two pages)."""
    end_user = make_end_user("usr_expired1", "Eve Expired")
    session = give_session(end_user, ["github"], session_admin)
    catalog.set_connection(session.session_id, "github", "EXPIRED", "The provider's token expired")
    long_ago = timezone.now() - timedelta(days=30)
    AttentionState.objects.bulk_create(
        AttentionState(
            end_user=user,
            reasons=[{"kind": "stale", "text": "Composio no longer knows the session (stale)."}],
            problem_at=long_ago - timedelta(minutes=n),
            checked_at=long_ago,
        )
        for n, user in enumerate(make_end_users(55, prefix="usr_old"))
    )
    report = attention.attention_sweep(end_user=end_user)
    assert report.attention == 1, report.summary()
    return end_user


@pytest.mark.parametrize("role", ["support", "session admin"])
def test_from_the_landing_count_to_the_users_card(
    expired_user: EndUser, support_user: User, session_admin: User, role: str, page
) -> None:
    slug = role.replace(" ", "-")
    log_in(page, support_user if role == "support" else session_admin, "/support/")

    page.get_by_role("link", name="56 users need attention").click()
    page.wait_for_url("**/support/attention/")
    rows = page.locator("tr.attention-row")
    expect(rows).to_have_count(attention.PAGE_SIZE)
    expect(rows.first).to_contain_text("usr_expired1")
    expect(rows.first).to_contain_text(
        "github: the connected account is expired (The provider's token expired)."
    )
    shot(page, "support-attention", f"{slug}-01-page")

    # The pager swaps the list in place and keeps the address.
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("link", name="Older").click()
    expect(rows).to_have_count(6)
    expect(rows.last).to_contain_text("usr_old_00054")
    page.wait_for_url("**/support/attention/?after=*")
    assert page.evaluate("window.__sameDocument") is True
    page.get_by_role("link", name="Newest").click()
    expect(rows.first).to_contain_text("usr_expired1")
    page.wait_for_url("**/support/attention/")

    rows.first.get_by_role("link", name="usr_expired1").click()
    page.wait_for_url(f"**/support/users/{expired_user.public_id}/")
    expect(page.locator("#user-card")).to_contain_text("usr_expired1")
    shot(page, "support-attention", f"{slug}-02-card")
