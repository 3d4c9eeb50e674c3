"""The auditor's pages in a real browser: styled by the console's own stylesheet (the CSP allows
no inline style), with no console error on any of them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from tests.browser import BROWSER_TESTS, log_in, shot
from tests.factories import give_session, make_end_user

pytestmark = BROWSER_TESTS

AUDIT_PAGES = [
    "/audit/",
    "/audit/access/users/",
    "/audit/events/",
    "/audit/access/toolkits/github/",
]


@pytest.fixture
def holders(catalog: object, session_admin: User) -> None:
    for n in range(3):
        give_session(make_end_user(f"usr_audit{n}"), ["github"], session_admin)


def test_every_audit_page_is_styled_and_logs_no_error(
    holders: None, auditor: User, page: object
) -> None:
    log_in(page, auditor, "/audit/")

    for url in AUDIT_PAGES:
        page.goto(url)
        tabs = page.locator("nav.audit-tabs")
        assert tabs.evaluate("el => getComputedStyle(el).display") == "flex", url
        current = tabs.locator("a[aria-current=page]")
        assert current.evaluate("el => getComputedStyle(el).fontWeight") == "600", url
        shot(page, "audit-browser", url.strip("/").replace("/", "-"))
    # The page fixture fails the test on any console error: a blocked inline style is one.
