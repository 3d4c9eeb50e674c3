"""Connection checks are cached per session for every web process: 60 views of one session's
connections send at most 5 requests to Composio (counted by the emulator that received them)."""

from __future__ import annotations

import time
from collections import Counter
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.urls import reverse

from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, RateBudget, ToolRouterSession
from sessions_app.tool_router import connections, sessions
from sessions_app.tool_router.connections import ConnectionCheck
from tests.bad_input import Watch
from tests.factories import HX, client_for, give_session, make_end_user, store_session
from tests.helpers import ON_POSTGRESQL, run_together

VIEWS = 60
MOST_REQUESTS = 5


def _url(session: ToolRouterSession) -> str:
    return reverse("sessions_app:support_session_connections", args=[session.public_id])


def _check(session: ToolRouterSession, actor: User) -> ConnectionCheck:
    """A check as the support view makes it: for a web request."""
    request = RequestFactory().get(_url(session))
    request.user = actor
    return connections.tool_router_session_connections(
        session=session, actor=actor, request=request
    )


# --- The figure ------------------------------------------------------------------------------


def test_60_views_of_one_sessions_connections_send_at_most_5_requests_to_composio(
    remote_session: ToolRouterSession,
    support_user: User,
    session_admin: User,
    emulator: Emulator,
) -> None:
    clients = [client_for(support_user), client_for(session_admin)]
    before = emulator.count()

    for n in range(VIEWS):
        # Two staff users, fragments and whole pages, as tabs that poll would send them.
        headers = HX if n % 3 else {}
        response = clients[n % 2].get(_url(remote_session), headers=headers)
        assert response.status_code == HTTPStatus.OK
        assert b"not connected" in response.content

    sent = emulator.requests[before:]
    assert len(sent) <= MOST_REQUESTS
    # In fact one check: the session, then its toolkits.
    assert Counter(r.endpoint for r in sent) == {"session.get": 1, "session.toolkits": 1}


def test_a_view_within_the_ttl_is_served_from_the_cache_and_says_how_old_it_is(
    remote_session: ToolRouterSession,
    support_user: User,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = _check(remote_session, support_user)
    assert first.ok and first.age == 0 and first.checked_at is not None
    before = emulator.count()
    checked_at = first.checked_at
    monkeypatch.setattr(connections, "_clock", lambda: checked_at + 12.4)

    second = _check(remote_session, support_user)

    assert emulator.count() == before
    assert second.checked_at == first.checked_at and second.age == 12
    assert [c.slug for c in second.connections] == ["github", "gmail"]
    html = client_for(support_user).get(_url(remote_session), headers=HX).content.decode()
    assert "checked 12 s ago" in html


def test_after_the_ttl_the_next_view_asks_composio_again(
    remote_session: ToolRouterSession, support_user: User, emulator: Emulator, settings
) -> None:
    settings.CONNECTION_STATUS_CACHE_SECONDS = 1
    _check(remote_session, support_user)
    emulator.set_connection(remote_session.session_id, "github", "ACTIVE")
    time.sleep(2.1)  # the cache keeps whole seconds
    before = emulator.count()

    check = _check(remote_session, support_user)

    assert emulator.count() - before == 2
    assert {c.slug: c.state for c in check.connections}["github"] == "active"
    assert check.age == 0


def test_the_cache_is_per_session(
    remote_session: ToolRouterSession, support_user: User, emulator: Emulator
) -> None:
    other = store_session(make_end_user("usr_other"), "trs_other0000001")
    before = emulator.count("session.get")
    for _ in range(3):
        _check(remote_session, support_user)
        _check(other, support_user)
    assert emulator.count("session.get") - before == 2


def test_composio_failing_is_kept_too_so_views_do_not_hammer_it(
    remote_session: ToolRouterSession, support_user: User, emulator: Emulator
) -> None:
    emulator.faults.enqueue(503, endpoint="session.get", times=10)
    failed = _check(remote_session, support_user)
    assert "HTTP 503" in failed.error
    before = emulator.count()

    again = _check(remote_session, support_user)

    assert again.error == failed.error and emulator.count() == before


def test_changing_the_toolkits_forgets_the_cached_state(
    session_admin: User, catalog: Emulator
) -> None:
    session = give_session(make_end_user("usr_change"), ["github"], session_admin)
    assert [c.slug for c in _check(session, session_admin).connections] == ["github"]

    result = sessions.tool_router_session_change_toolkits(
        session=session, toolkits=["github", "slack"], actor=session_admin
    )
    assert result.ok, result.message
    session.refresh_from_db()

    assert [c.slug for c in _check(session, session_admin).connections] == ["github", "slack"]


def test_a_view_that_fills_the_cache_writes_no_audit_event_and_no_row_but_the_budgets(
    remote_session: ToolRouterSession, support_client: Client, emulator: Emulator
) -> None:
    watch = Watch()
    support_client.get(_url(remote_session), headers=HX)
    # The requests it sent were paid from the shared budget: that row, nothing else.
    assert watch.changed_tables() == ["sessions_app.ratebudget"]
    assert watch.events() == []
    watch = Watch()
    support_client.get(_url(remote_session), headers=HX)
    watch.assert_wrote([])


def test_while_another_request_fills_the_cache_a_view_waits_for_it_and_sends_nothing(
    remote_session: ToolRouterSession, support_user: User, emulator: Emulator, settings
) -> None:
    settings.COMPOSIO_WEB_MAX_WAIT_SECONDS = 0.3
    # Another process holds the filler's place and never answers.
    cache.add(f"connections:{remote_session.public_id}:filling", time.time(), timeout=30)
    before = emulator.count()

    check = _check(remote_session, support_user)

    assert emulator.count() == before
    assert check.retry_after == 1
    assert "Another request is asking Composio" in check.error


# --- Many views at once (PostgreSQL: real threads, one connection each) ----------------------


class TestAtOnceOnPostgreSQL:
    pytestmark = ON_POSTGRESQL

    def test_20_views_at_once_on_a_cold_cache_make_one_check(
        self, remote_session: ToolRouterSession, support_user: User, emulator: Emulator
    ) -> None:
        clients = [client_for(support_user) for _ in range(20)]
        before = emulator.count()

        responses = run_together(
            *[lambda c=c: c.get(_url(remote_session), headers=HX) for c in clients]
        )

        statuses = Counter(getattr(r, "status_code", repr(r)) for r in responses)
        assert statuses == {HTTPStatus.OK: 20}, statuses
        assert all(b"not connected" in r.content for r in responses)  # type: ignore[union-attr]
        sent = emulator.requests[before:]
        assert Counter(r.endpoint for r in sent) == {"session.get": 1, "session.toolkits": 1}
        assert RateBudget.objects.count() == 1
        assert not AuditEvent.objects.filter(action="access.refused").exists()
