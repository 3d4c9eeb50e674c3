"""The support card's connected accounts: the panel, reconnect links, enabling and disabling an
account, against the emulator over HTTP through the real SDK."""

from __future__ import annotations

from collections import Counter
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sessions_app.composio import seam as composio_seam
from sessions_app.models import AuditEvent, ToolRouterSession
from sessions_app.tool_router import mcp_url, rate_limit
from tests.factories import HX, client_for
from tests.helpers import ON_POSTGRESQL, run_together


def panel_url(session: ToolRouterSession) -> str:
    return reverse("sessions_app:support_session_accounts", args=[session.public_id])


def link_url(session: ToolRouterSession, toolkit: str) -> str:
    return reverse("sessions_app:support_connect_link", args=[session.public_id, toolkit])


def status_url(session: ToolRouterSession, account_id: str) -> str:
    return reverse(
        "sessions_app:support_connected_account_status",
        args=[session.public_id, mcp_url.fingerprint(account_id)],
    )


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


# --- The panel ---------------------------------------------------------------------------------


def test_the_panel_shows_each_toolkits_account_and_the_users_other_accounts(
    remote_session: ToolRouterSession, support_client: Client, emulator: Any
) -> None:
    github = emulator.set_connection(
        remote_session.session_id, "github", "EXPIRED", status_reason="Refresh token expired"
    )
    gmail = emulator.set_connection(remote_session.session_id, "gmail", "FAILED")
    slack = emulator.create_account("usr_conn", "slack", "ACTIVE")

    response = support_client.get(panel_url(remote_session), headers=HX)

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "<html" not in html
    for account_id in (github, gmail, slack):
        assert mcp_url.masked_id_text(account_id) in html
        assert account_id not in html
    assert 'badge-expired">expired' in html
    assert "Refresh token expired" in html
    assert 'badge-failed">failed' in html
    assert "The user's other accounts" in html
    other = html.split("accounts-other", 1)[1]
    assert mcp_url.masked_id_text(slack) in other and 'badge-active">active' in other
    stored = emulator.accounts[github]
    assert stored["auth_config_id"] in html
    assert "Composio-managed" in html
    assert "checked 0 s ago" in html
    assert remote_session.mcp_url not in html


def test_the_panel_is_a_full_page_without_javascript_and_is_served_from_the_cache(
    remote_session: ToolRouterSession, support_client: Client, emulator: Any
) -> None:
    emulator.set_connection(remote_session.session_id, "github", "INACTIVE")
    first = support_client.get(panel_url(remote_session))
    assert first.status_code == HTTPStatus.OK
    assert b"<html" in first.content and b"inactive (disabled)" in first.content
    listed = emulator.count("connected_accounts.list")

    support_client.get(panel_url(remote_session), headers=HX)

    assert emulator.count("connected_accounts.list") == listed


def test_the_card_offers_the_panel(
    remote_session: ToolRouterSession, support_client: Client, emulator: Any
) -> None:
    card = reverse("sessions_app:support_user_card", args=[remote_session.end_user.public_id])
    html = support_client.get(card).content.decode()
    assert panel_url(remote_session) in html
    assert "Show connected accounts" in html


def test_when_composio_fails_the_panel_says_so_and_changes_nothing(
    remote_session: ToolRouterSession, support_client: Client, emulator: Any
) -> None:
    emulator.set_connection(remote_session.session_id, "github", "ACTIVE")
    emulator.faults.enqueue(503, endpoint="connected_accounts.list", times=10)
    before = AuditEvent.objects.count()

    response = support_client.get(panel_url(remote_session), headers=HX)

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Could not read the connected accounts" in html and "Try again" in html
    assert AuditEvent.objects.count() == before


def test_the_seam_follows_composios_cursor_through_the_users_accounts(emulator: Any) -> None:
    made = {emulator.create_account("usr_pages", slug, "ACTIVE") for slug in ("github", "gmail")}
    made.add(emulator.create_account("usr_pages", "slack", "EXPIRED"))
    emulator.create_account("usr_someone_else", "github", "ACTIVE")

    listed = composio_seam.list_connected_accounts("usr_pages", page_size=2)

    assert {a.id for a in listed} == made
    assert emulator.count("connected_accounts.list") == 2
    assert all(a.user_id == "usr_pages" and a.auth_config_id for a in listed)


def test_check_now_asks_past_the_cache_once_per_turn(
    remote_session: ToolRouterSession, support_client: Client, emulator: Any
) -> None:
    check = reverse("sessions_app:support_session_accounts_check", args=[remote_session.public_id])
    support_client.get(panel_url(remote_session), headers=HX)
    listed = emulator.count("connected_accounts.list")

    first = support_client.post(check, headers=HX)
    again = support_client.post(check, headers=HX)

    assert first.status_code == HTTPStatus.OK
    assert emulator.count("connected_accounts.list") == listed + 1
    assert again.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert b"you may check again in" in again.content


# --- Reconnect links ---------------------------------------------------------------------------


def test_support_gets_a_reconnect_link_once_audited_without_the_url(
    remote_session: ToolRouterSession, support_user: User, emulator: Any, settings: Any
) -> None:
    settings.CONNECT_LINK_CALLBACK_URL = "https://console.example.test/connected"
    emulator.set_connection(remote_session.session_id, "github", "EXPIRED")

    response = client_for(support_user).post(link_url(remote_session, "github"), headers=HX)

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    link = next(r for r in emulator.requests if r.endpoint == "session.link")
    assert link.json == {"toolkit": "github", "callback_url": settings.CONNECT_LINK_CALLBACK_URL}
    assert "/_emulator/connect/" in html and "data-remask-after" in html
    assert "no-store" in response["Cache-Control"]
    (event,) = _events("connect_link.create")
    assert event.outcome == AuditEvent.Outcome.SUCCESS and event.actor == support_user
    assert event.details["toolkit"] == "github"
    assert event.details["account"].startswith("ca_…#")
    assert "/_emulator/connect/" not in str(event.details) + event.reason


def test_a_session_admin_may_send_a_link_too_and_a_non_js_post_gets_a_page(
    remote_session: ToolRouterSession, session_admin_client: Client, emulator: Any
) -> None:
    response = session_admin_client.post(link_url(remote_session, "gmail"))
    assert response.status_code == HTTPStatus.OK
    assert b"<html" in response.content and b"/_emulator/connect/" in response.content


def test_a_toolkit_not_in_the_session_is_refused_without_a_call(
    remote_session: ToolRouterSession, support_client: Client, emulator: Any
) -> None:
    before = len(emulator.requests)

    response = support_client.post(link_url(remote_session, "slack"), headers=HX)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert b"not a toolkit of this session" in response.content
    assert len(emulator.requests) == before
    (event,) = _events("connect_link.create")
    assert event.outcome == AuditEvent.Outcome.REJECTED


def test_links_are_limited_per_staff_user(
    remote_session: ToolRouterSession,
    support_user: User,
    session_admin: User,
    emulator: Any,
    settings: Any,
) -> None:
    settings.CONNECT_LINKS_PER_HOUR = 1
    client = client_for(support_user)
    assert client.post(link_url(remote_session, "github"), headers=HX).status_code == 200
    sent = emulator.count("session.link")

    again = client.post(link_url(remote_session, "github"), headers=HX)

    assert again.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert int(again["Retry-After"]) > 0
    assert b"reconnect links in the last hour" in again.content
    assert emulator.count("session.link") == sent
    other = client_for(session_admin).post(link_url(remote_session, "github"), headers=HX)
    assert other.status_code == HTTPStatus.OK


class TestLinksAtOnceOnPostgreSQL:
    pytestmark = ON_POSTGRESQL

    def test_parallel_links_by_one_staff_user_pass_the_limit_exactly(
        self, remote_session: ToolRouterSession, support_user: User, emulator: Any, settings: Any
    ) -> None:
        """The count and the request's own event share the lock's transaction: 8 links asked at
        once with a limit of 2 send exactly 2 requests to Composio, whatever their calls' timing."""
        settings.CONNECT_LINKS_PER_HOUR = 2
        emulator.faults.latency(0.2, endpoint="session.link")
        clients = [client_for(support_user) for _ in range(8)]

        responses = run_together(
            *[lambda c=c: c.post(link_url(remote_session, "github"), headers=HX) for c in clients]
        )

        statuses = Counter(getattr(r, "status_code", repr(r)) for r in responses)
        assert statuses == {HTTPStatus.OK: 2, HTTPStatus.TOO_MANY_REQUESTS: 6}, statuses
        assert emulator.count("session.link") == 2
        outcomes = Counter(e.outcome for e in _events("connect_link.create"))
        assert outcomes == {AuditEvent.Outcome.SUCCESS: 2, AuditEvent.Outcome.REFUSED: 6}


@pytest.mark.parametrize(
    ("fault", "expected"),
    [({"status": 503}, "HTTP 503"), ({"status": 429, "retry_after": 7}, "rate limiting")],
)
def test_a_failed_link_says_why_and_shows_no_url(
    remote_session: ToolRouterSession,
    support_client: Client,
    emulator: Any,
    fault: dict[str, Any],
    expected: str,
) -> None:
    emulator.faults.enqueue(endpoint="session.link", **fault)
    before = dict(emulator.accounts)

    response = support_client.post(link_url(remote_session, "github"), headers=HX)

    assert response.status_code in (HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.TOO_MANY_REQUESTS)
    html = response.content.decode()
    assert "No link was made" in html and expected in html
    assert "/_emulator/connect/" not in html
    assert emulator.accounts == before
    (event,) = _events("connect_link.create")
    assert event.outcome == AuditEvent.Outcome.FAILURE


def test_a_link_that_times_out_says_so(
    remote_session: ToolRouterSession, support_client: Client, emulator: Any, settings: Any
) -> None:
    settings.COMPOSIO_READ_TIMEOUT = 0.3
    composio_seam.reset_client()
    emulator.faults.latency(1.5, endpoint="session.link")

    response = support_client.post(link_url(remote_session, "github"), headers=HX)

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert b"did not answer in time" in response.content
    (event,) = _events("connect_link.create")
    assert event.outcome == AuditEvent.Outcome.UNKNOWN


# --- Enabling and disabling --------------------------------------------------------------------


def test_a_session_admin_confirms_then_disables_an_account(
    remote_session: ToolRouterSession, session_admin: User, emulator: Any
) -> None:
    account = emulator.set_connection(remote_session.session_id, "github", "ACTIVE")
    client = client_for(session_admin)

    confirm = client.get(status_url(remote_session, account), headers=HX)

    assert confirm.status_code == HTTPStatus.OK
    page = confirm.content.decode()
    assert "usr_conn" in page and "github" in page and mcp_url.masked_id_text(account) in page
    assert account not in page
    assert emulator.accounts[account]["status"] == "ACTIVE"

    done = client.post(
        status_url(remote_session, account), {"enabled": "false", "reason": "user reports misuse"}
    )

    assert done.status_code == HTTPStatus.FOUND
    assert emulator.accounts[account]["status"] == "INACTIVE"
    (event,) = _events("connected_account.disable")
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.reason == "user reports misuse"
    assert event.details["account"] == mcp_url.masked_id_text(account)
    assert event.details["toolkit"] == "github"


def test_a_disabled_account_is_offered_enabling_and_htmx_gets_the_panel_back(
    remote_session: ToolRouterSession, session_admin_client: Client, emulator: Any
) -> None:
    account = emulator.set_connection(remote_session.session_id, "gmail", "INACTIVE")
    confirm = session_admin_client.get(status_url(remote_session, account), headers=HX)
    assert b"Yes, enable" in confirm.content

    done = session_admin_client.post(
        status_url(remote_session, account), {"enabled": "true"}, headers=HX
    )

    assert done.status_code == HTTPStatus.OK
    assert emulator.accounts[account]["status"] == "ACTIVE"
    assert b"is enabled" in done.content and b'badge-active">active' in done.content


def test_an_account_of_another_user_is_not_found(
    remote_session: ToolRouterSession, session_admin_client: Client, emulator: Any
) -> None:
    stranger = emulator.create_account("usr_other", "github", "ACTIVE")
    response = session_admin_client.post(status_url(remote_session, stranger), {"enabled": "false"})
    assert response.status_code == HTTPStatus.FOUND
    assert emulator.accounts[stranger]["status"] == "ACTIVE"
    assert emulator.count("connected_accounts.update_status") == 0


def test_a_failed_disable_says_why_and_changes_nothing(
    remote_session: ToolRouterSession, session_admin_client: Client, emulator: Any
) -> None:
    account = emulator.set_connection(remote_session.session_id, "github", "ACTIVE")
    emulator.faults.enqueue(500, endpoint="connected_accounts.update_status")

    response = session_admin_client.post(
        status_url(remote_session, account), {"enabled": "false"}, headers=HX
    )

    assert b"The account was not disabled" in response.content
    assert emulator.accounts[account]["status"] == "ACTIVE"
    (event,) = _events("connected_account.disable")
    assert event.outcome in (AuditEvent.Outcome.FAILURE, AuditEvent.Outcome.UNKNOWN)


def test_a_change_must_say_enable_or_disable(
    remote_session: ToolRouterSession, session_admin_client: Client, emulator: Any
) -> None:
    account = emulator.set_connection(remote_session.session_id, "github", "ACTIVE")
    response = session_admin_client.post(status_url(remote_session, account), {})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert emulator.count("connected_accounts.update_status") == 0


@pytest.mark.parametrize("who", ["support_user", "auditor", "outsider"])
def test_only_a_session_admin_may_change_an_account(
    remote_session: ToolRouterSession, emulator: Any, who: str, request: Any
) -> None:
    account = emulator.set_connection(remote_session.session_id, "github", "ACTIVE")
    client = client_for(request.getfixturevalue(who))
    assert client.get(status_url(remote_session, account)).status_code == HTTPStatus.FORBIDDEN
    response = client.post(status_url(remote_session, account), {"enabled": "false"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert emulator.accounts[account]["status"] == "ACTIVE"
    assert AuditEvent.objects.filter(action="access.refused").exists()


@pytest.mark.parametrize("who", ["auditor", "outsider", None])
def test_who_may_not_send_links_is_refused_without_a_call(
    remote_session: ToolRouterSession, emulator: Any, who: str | None, request: Any
) -> None:
    user = request.getfixturevalue(who) if who else None
    response = client_for(user).post(link_url(remote_session, "github"))
    if user is None:
        assert response.status_code == HTTPStatus.FOUND
        assert response["Location"].startswith("/accounts/login/")
    else:
        assert response.status_code == HTTPStatus.FORBIDDEN
    assert emulator.count("session.link") == 0


# --- The shared budget -------------------------------------------------------------------------


def test_a_spent_budget_sends_no_link_and_changes_no_account(
    remote_session: ToolRouterSession,
    support_client: Client,
    session_admin_client: Client,
    emulator: Any,
) -> None:
    account = emulator.set_connection(remote_session.session_id, "github", "ACTIVE")
    session_admin_client.get(status_url(remote_session, account))  # the accounts, cached
    rate_limit.reserve(rate_limit.burst() + 200)  # as bulk runners leave it
    before = len(emulator.requests)

    link = support_client.post(link_url(remote_session, "github"), headers=HX)
    change = session_admin_client.post(
        status_url(remote_session, account), {"enabled": "false"}, headers=HX
    )

    assert link.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert b"request budget is spent" in link.content and int(link["Retry-After"]) > 0
    assert "request budget is spent" in change.content.decode()
    assert len(emulator.requests) == before
    assert emulator.accounts[account]["status"] == "ACTIVE"


def test_when_the_sessions_check_fails_the_users_accounts_are_not_called_unused(
    remote_session: ToolRouterSession, support_client: Client, emulator: Any
) -> None:
    account = emulator.set_connection(remote_session.session_id, "github", "EXPIRED")
    emulator.faults.enqueue(503, endpoint="session.get", times=10)

    html = support_client.get(panel_url(remote_session), headers=HX).content.decode()

    assert "Could not read the connected accounts" in html
    assert "Which of these the session uses is not known" in html
    assert mcp_url.masked_id_text(account) in html and 'badge-expired">expired' in html
