"""Config history in Chromium, for the two roles that may read it: someone changes a session at
Composio directly; its admin page shows Composio's versions beside the audit events with the
unexplained one flagged (auditor and session admin), and the access report (auditor only) lists
the session as a finding that links back."""

from __future__ import annotations

import httpx
import pytest
from django.contrib.auth.models import User

from sessions_app.models import ToolRouterSession
from tests.browser import BROWSER_TESTS, log_in, shot
from tests.helpers import SESSION_URL

pytestmark = BROWSER_TESTS


@pytest.mark.parametrize("role", ["auditor", "session_admin"])
def test_a_change_outside_the_console_is_flagged_on_the_session_and_the_report(
    alices_session: ToolRouterSession, emu_http: httpx.Client, role: str, request, page
) -> None:
    user: User = request.getfixturevalue(role)
    outside = emu_http.patch(
        f"{SESSION_URL}/{alices_session.session_id}",
        json={"toolkits": {"enable": ["github", "gmail"]}},
    )
    assert outside.status_code == 200, outside.text
    change = f"/admin/sessions_app/toolroutersession/{alices_session.pk}/change/"

    log_in(page, user, change)
    finding = page.locator("#config-history-finding")
    finding.wait_for()
    assert "1 version recorded by Composio that no audit event explains" in finding.inner_text()
    assert "session.create" in page.locator("#config-history-events").inner_text()
    shot(page, "config-history", f"session-{role.replace('_', '-')}")

    if role != "auditor":
        return
    page.goto("/audit/access/")
    card = page.locator("#changed-outside")
    assert "1 session with a configuration version" in card.inner_text()
    assert "github, gmail" in card.inner_text()
    shot(page, "config-history", f"report-{role.replace('_', '-')}")
    card.locator("a").first.click()
    page.wait_for_url(f"**{change}")
