"""Drift: `verify_sessions` notices the sessions Composio no longer knows (the emulator forgot
them), marks them stale (never on a fault), continues where it stopped, and every place that
shows a session says so; the operations that meet a not-found mark it too and say to refresh."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any
from unittest import mock

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from sessions_app import housekeeping
from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, ToolRouterSession
from sessions_app.tool_router import connections, drift, mcp_url, sessions
from sessions_app.tool_router.mcp_url import short_id
from tests.factories import HX, give_session
from tests.helpers import SESSION_URL, audit_events, run_command, run_reconcile
from tests.task_queue import run_queue_once

pytestmark = pytest.mark.django_db


def verify(*args: str) -> tuple[int, str]:
    """Run `verify_sessions`; (exit code, output)."""
    return run_command("verify_sessions", *args)


def forget(emu_http: httpx.Client, session: ToolRouterSession) -> None:
    """Delete the session at the emulator behind the console's back (Composio's dashboard)."""
    assert emu_http.delete(f"{SESSION_URL}/{session.session_id}").status_code == 200


@pytest.fixture
def three(
    catalog: Emulator, end_users: list[EndUser], session_admin: User, fast_bulk: None
) -> list[ToolRouterSession]:
    """usr_1..usr_3 each with a github session the emulator knows."""
    return [give_session(user, ["github"], session_admin) for user in end_users]


# --- verify_sessions ---------------------------------------------------------------------------


def test_a_session_composio_lost_is_marked_stale_and_the_rest_verified(
    three: list[ToolRouterSession], emu_http: httpx.Client, catalog: Emulator
) -> None:
    lost = three[1]
    forget(emu_http, lost)

    code, out = verify()

    assert code == 1, out
    assert "Checked 3 of 3 active sessions: 2 known to Composio, 1 not known (stale; 1 newly" in out
    assert f"STALE      {mcp_url.masked_id_text(lost.session_id)} (usr_2)" in out
    assert lost.session_id not in out  # masked, as everywhere
    assert catalog.count("session.get") == 3
    lost.refresh_from_db()
    assert lost.stale_since is not None and lost.is_stale
    for kept in (three[0], three[2]):
        kept.refresh_from_db()
        assert kept.stale_since is None and kept.verified_at is not None
    [event] = audit_events(drift.STALE_ACTION)
    assert event.session_id == lost.pk and event.outcome == AuditEvent.Outcome.FAILURE
    assert event.details == {
        "via": "verify_sessions",
        "masked_id": mcp_url.masked_id_text(lost.session_id),
    }
    assert lost.session_id not in event.reason

    # Again: still stale, no second event; Composio is asked again (it may know it again).
    code, out = verify()
    assert code == 1 and "0 newly marked" in out
    assert len(audit_events(drift.STALE_ACTION)) == 1


def test_an_emulator_that_lost_everything_makes_every_session_stale_and_reconcile_says_so(
    three: list[ToolRouterSession], catalog: Emulator, client: Client
) -> None:
    catalog.reset()  # the emulator restarted without its state

    code, out = verify()

    assert code == 1 and "3 not known (stale; 3 newly marked)" in out
    assert drift.stale_count() == 3
    assert client.get("/healthz").json()["stale_sessions"] == 3
    code, report = run_reconcile()
    assert code == 1
    assert report.startswith("STALE        session ")
    assert "Nothing to reconcile.\n3 active sessions are stale" in report
    assert "3 stale sessions need a person" in report


def test_a_session_changed_outside_the_console_becomes_a_finding_read_once(
    three: list[ToolRouterSession], emu_http: httpx.Client, catalog: Emulator
) -> None:
    """Composio's config version past the stored one: verify reads the history once and stores
    the unexplained version for the access report; a change the console made reads nothing."""
    changed, by_console = three[0], three[1]
    response = emu_http.patch(
        f"{SESSION_URL}/{changed.session_id}", json={"toolkits": {"enable": ["github", "gmail"]}}
    )
    assert response.status_code == 200, response.text
    sessions.tool_router_session_change_toolkits(
        session=by_console, toolkits=["github", "gmail"], actor=by_console.created_by
    )

    code, out = verify()

    assert code == 0, out
    assert "1 changed outside the console (on the access report)" in out
    assert "Changed outside the console: config version 2" in out
    assert catalog.count("session.config_history") == 1
    changed.refresh_from_db()
    assert [v["version"] for v in changed.config_unexplained] == [2]
    by_console.refresh_from_db()
    assert not by_console.config_unexplained

    code, out = verify()  # the finding stands: no second reading
    assert code == 0 and "changed outside" not in out
    assert catalog.count("session.config_history") == 1


def test_a_session_known_again_is_unmarked(
    three: list[ToolRouterSession], emu_http: httpx.Client
) -> None:
    session = three[0]
    drift.mark_stale(session, via="test")
    assert drift.stale_count() == 1

    code, out = verify("--user", "usr_1")

    assert code == 0, out
    assert "1 known again (stale mark cleared)" in out
    session.refresh_from_db()
    assert session.stale_since is None
    [event] = audit_events(drift.KNOWN_AGAIN_ACTION)
    assert event.session_id == session.pk


@pytest.mark.parametrize(
    "fault",
    ["500", "503", "429", "timeout", "unreachable"],
)
def test_a_fault_marks_nothing_and_is_counted_as_could_not_check(
    three: list[ToolRouterSession],
    emu_http: httpx.Client,
    catalog: Emulator,
    settings: Any,
    fault: str,
) -> None:
    forget(emu_http, three[0])  # even a lost session is not marked on a fault
    before = {s.pk: s.verified_at for s in three}
    settings.COMPOSIO_SAFE_RETRIES = 0
    if fault == "timeout":
        settings.COMPOSIO_READ_TIMEOUT = 0.3
        catalog.faults.latency(0.6, endpoint="session.get")
    elif fault == "unreachable":
        settings.COMPOSIO_EMULATOR_URL = "http://127.0.0.1:9"
    else:
        catalog.faults.enqueue(int(fault), endpoint="session.get", times=10)
    from sessions_app.composio import seam

    seam.reset_client()
    try:
        code, out = verify("--user", "usr_1")
    finally:
        catalog.faults.clear()
        if fault == "timeout":
            time.sleep(0.6)  # let the held request finish before the next test

    assert code == 3, out
    assert "1 could not be checked (left for the next run)" in out
    assert "UNCHECKED" in out and "Not marked." in out
    assert three[0].session_id not in out
    assert drift.stale_count() == 0
    assert not audit_events(drift.STALE_ACTION)
    three[0].refresh_from_db()
    assert three[0].verified_at == before[three[0].pk]


def test_a_429_stops_the_run_and_leaves_the_rest_for_the_next(
    three: list[ToolRouterSession], catalog: Emulator, settings: Any
) -> None:
    settings.COMPOSIO_SAFE_RETRIES = 0
    catalog.faults.enqueue(429, endpoint="session.get", retry_after=5)

    code, out = verify()

    assert code == 3
    assert "Stopped early: Composio is rate limiting requests; 2 not reached." in out
    assert catalog.count("session.get") == 1


def test_it_resumes_oldest_checked_first(three: list[ToolRouterSession], catalog: Emulator) -> None:
    # Made in order usr_1, usr_2, usr_3: their creation verified them in that order.
    ToolRouterSession.objects.filter(pk=three[0].pk).update(verified_at=None)  # never checked

    code, out = verify("--limit", "2")
    assert code == 0
    assert [line.split("(")[1].split(")")[0] for line in out.splitlines()[:2]] == [
        "usr_1",
        "usr_2",
    ]
    # The next run starts with the one checked longest ago: usr_3.
    code, out = verify("--limit", "1")
    assert "(usr_3)" in out.splitlines()[0]


class Killed(BaseException):
    """The worker was killed mid-run (no `except Exception` stops it)."""


def test_a_run_interrupted_midway_is_continued_by_the_next(
    three: list[ToolRouterSession], catalog: Emulator
) -> None:
    real = drift.mark_known
    calls = {"n": 0}

    def dies_on_the_second(session: ToolRouterSession, **kwargs: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed
        return real(session, **kwargs)

    with mock.patch.object(drift, "mark_known", dies_on_the_second), pytest.raises(Killed):
        drift.verify_sessions()
    checked_first = ToolRouterSession.objects.order_by("-verified_at").first()
    assert checked_first is not None and checked_first.pk == three[0].pk

    report = drift.verify_sessions(limit=2)
    # usr_2 (interrupted) and usr_3 were checked longest ago: they come first.
    assert [item.session.end_user.external_id for item in report.items] == ["usr_2", "usr_3"]


def test_the_command_names_an_unknown_user(db: None) -> None:
    code, out = verify("--user", "nobody")
    assert code == 2 and "No end user 'nobody'." in out


def test_no_session_no_work(db: None) -> None:
    assert verify() == (0, "No active session to verify.\n")


# --- The periodic task -------------------------------------------------------------------------


def test_schedule_books_once_and_a_worker_verifies_and_books_the_next(
    queued: None, three: list[ToolRouterSession], catalog: Emulator, settings: Any
) -> None:
    catalog.reset()

    assert (
        verify("--schedule")[1] == "The task workers will check up to 500 sessions every 3600 s.\n"
    )
    assert "(already booked)" in verify("--schedule")[1]
    run_queue_once()

    assert drift.stale_count() == 3
    (next_run,) = DBTaskResult.objects.filter(
        task_path=housekeeping.DRIFT_TASK_PATH, status="READY"
    )
    wait = next_run.run_after - timezone.now()
    assert timedelta(seconds=3590) < wait <= timedelta(seconds=3600)


def test_a_run_whose_worker_was_killed_does_not_block_the_chain_for_good(
    queued: None, db: None, settings: Any
) -> None:
    assert housekeeping.schedule_drift()
    run = DBTaskResult.objects.get(task_path=housekeeping.DRIFT_TASK_PATH)
    # A worker claimed it, then was killed: the row stays RUNNING.
    DBTaskResult.objects.filter(pk=run.pk).update(status="RUNNING", started_at=timezone.now())
    assert not housekeeping.schedule_drift()  # running, as far as anyone can tell

    DBTaskResult.objects.filter(pk=run.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.PERIODIC_TASK_DEAD_AFTER_SECONDS + 1)
    )
    assert housekeeping.schedule_drift()

    run.refresh_from_db()
    assert run.status == "FAILED" and "worker was lost" in run.traceback
    assert DBTaskResult.objects.filter(task_path=housekeeping.DRIFT_TASK_PATH, status="READY")


def test_the_immediate_backend_books_nothing(immediate: None) -> None:
    assert "no periodic checks; run this from cron" in verify("--schedule")[1]
    assert not DBTaskResult.objects.exists()


# --- Operations that meet a not-found ----------------------------------------------------------


def test_a_connections_check_of_a_lost_session_marks_it_and_says_to_refresh(
    three: list[ToolRouterSession], emu_http: httpx.Client, support_user: User
) -> None:
    session = three[0]
    forget(emu_http, session)

    check = connections.tool_router_session_connections(session=session, actor=support_user)

    assert check.error == drift.NOT_KNOWN and "Refresh the session" in check.error
    session.refresh_from_db()
    assert session.is_stale
    [event] = audit_events(drift.STALE_ACTION)
    assert event.actor == support_user and event.details["via"] == "connections check"


def test_change_toolkits_of_a_lost_session_marks_it_and_says_to_refresh(
    three: list[ToolRouterSession], emu_http: httpx.Client, session_admin: User
) -> None:
    session = three[0]
    forget(emu_http, session)

    result = sessions.tool_router_session_change_toolkits(
        session=session, toolkits=["github", "gmail"], actor=session_admin
    )

    assert not result.ok
    assert "Composio no longer knows this session" in result.message
    assert "Refresh the session to give the user a new one." in result.message
    session.refresh_from_db()
    assert session.is_stale
    assert audit_events(drift.STALE_ACTION)[0].details["via"] == "session.change_toolkits"


@pytest.mark.parametrize("marked", [True, False])
def test_refresh_of_a_lost_session_says_composio_no_longer_knew_it(
    three: list[ToolRouterSession], emu_http: httpx.Client, session_admin: User, marked: bool
) -> None:
    old = three[0]
    forget(emu_http, old)
    if marked:
        verify("--user", "usr_1")

    result = sessions.tool_router_session_refresh(end_user=old.end_user, actor=session_admin)

    assert result.ok, result.message
    assert f"Composio no longer knew the old session {short_id(old.session_id)}" in result.message
    assert "was deleted at Composio" not in result.message
    assert result.session is not None and result.session.stale_since is None
    assert result.session.toolkits == ["github"]
    old.refresh_from_db()
    assert old.status == ToolRouterSession.Status.SUPERSEDED and old.remote_deleted_at
    assert drift.stale_count() == 0


def test_refresh_of_a_known_session_still_says_it_was_deleted(
    three: list[ToolRouterSession], session_admin: User
) -> None:
    result = sessions.tool_router_session_refresh(end_user=three[0].end_user, actor=session_admin)
    old_id = short_id(three[0].session_id)
    assert f"the old session {old_id} was deleted at Composio." in result.message


@pytest.mark.parametrize("marked", [True, False])
def test_delete_of_a_lost_session_says_composio_no_longer_knew_it(
    three: list[ToolRouterSession], emu_http: httpx.Client, session_admin: User, marked: bool
) -> None:
    session = three[0]
    forget(emu_http, session)
    if marked:
        verify("--user", "usr_1")

    result = sessions.tool_router_session_delete(session=session, actor=session_admin)

    assert result.ok
    assert "(Composio no longer knew it)" in result.message
    assert drift.stale_count() == 0


def test_recreate_skips_a_session_that_is_not_stale(
    three: list[ToolRouterSession], session_admin: User, catalog: Emulator
) -> None:
    before = catalog.count("session.create")
    result = sessions.tool_router_session_recreate(end_user=three[0].end_user, actor=session_admin)
    assert result.outcome == sessions.Outcome.SKIPPED
    assert "Composio knows their session" in result.message
    assert catalog.count("session.create") == before


def test_recreate_needs_the_refresh_permission(
    three: list[ToolRouterSession], support_user: User, catalog: Emulator
) -> None:
    drift.mark_stale(three[0], via="test")
    before = catalog.count("session.create")
    result = sessions.tool_router_session_recreate(end_user=three[0].end_user, actor=support_user)
    assert result.outcome == sessions.Outcome.REFUSED
    assert catalog.count("session.create") == before


def test_the_card_and_support_landing_show_stale_sessions(
    three: list[ToolRouterSession], support_client: Client
) -> None:
    drift.mark_stale(three[0], via="test")

    landing = support_client.get(reverse("sessions_app:support_lookup")).content.decode()
    assert "1 active session is not known to Composio any more (stale)" in landing

    card = support_client.get(
        reverse("sessions_app:support_user_card", args=[three[0].end_user.public_id]), headers=HX
    ).content.decode()
    assert "badge-stale" in card and "Composio no longer knows this session" in card

    other = support_client.get(
        reverse("sessions_app:support_user_card", args=[three[1].end_user.public_id]), headers=HX
    ).content.decode()
    assert "badge-stale" not in other

    results = support_client.get(
        reverse("sessions_app:support_lookup"), {"q": "usr_"}, headers=HX
    ).content.decode()
    assert results.count("badge-stale") == 1
