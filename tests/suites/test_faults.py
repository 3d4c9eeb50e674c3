"""Faults suite: every way a call to Composio can fail, on create and on refresh.

Each fault leaves no half-written session, the old session intact, the outcome recorded (the
intent's state and one audit event), and `reconcile_sessions` settling it. Requests are counted
at the emulator (connection attempts at the socket for a refused connection): the SDK's retries
(pinned to 0) and the seam's never stack.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from unittest import mock

import pytest
from django.contrib.auth.models import User

from sessions_app.composio import seam as composio_seam
from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, SessionOperation, SessionToolkit
from sessions_app.models import ToolRouterSession as Session
from sessions_app.tool_router import sessions
from tests.factories import give_session
from tests.helpers import last_sequence, refuse_session_inserts, run_reconcile

SAFE_RETRIES = 2

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def safe_retries(settings) -> None:
    """The seam retries what was never sent this many times; the counts below depend on it."""
    settings.COMPOSIO_SAFE_RETRIES = SAFE_RETRIES


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def connection_refused(settings, attempts: list[int]) -> Iterator[None]:
    """Point the seam at a loopback port nobody listens on; count the connection attempts."""
    port = _closed_port()
    settings.COMPOSIO_EMULATOR_URL = f"http://127.0.0.1:{port}"
    composio_seam.reset_client()
    real = socket.create_connection

    def counting(address, *args, **kwargs):  # noqa: ANN001, ANN202 - socket's own signature
        if address[1] == port:
            attempts.append(port)
        return real(address, *args, **kwargs)

    with mock.patch("socket.create_connection", side_effect=counting):
        yield


@dataclass(frozen=True)
class Fault:
    name: str
    arm: Callable[[Emulator, object, list[int]], AbstractContextManager[None]]
    outcome: str  # the service's outcome and the intent's state
    message: str  # a fragment of the message shown to the person
    requests: int  # session.create requests the emulator receives
    orphan: str  # "none" | "named" (the intent names it) | "unnamed" (nobody knows its id)
    reconcile: str  # the report's first word, or "" for nothing to reconcile


def _queued(status: int, **kwargs: object):  # noqa: ANN202
    def arm(emu: Emulator, settings: object, attempts: list[int]) -> AbstractContextManager[None]:
        emu.faults.enqueue(status, endpoint="session.create", **kwargs)
        return nullcontext()

    return arm


def _refused(emu: Emulator, settings: object, attempts: list[int]) -> AbstractContextManager[None]:
    return connection_refused(settings, attempts)


def _timeout(emu: Emulator, settings, attempts: list[int]) -> AbstractContextManager[None]:  # noqa: ANN001
    settings.COMPOSIO_READ_TIMEOUT = 0.3
    composio_seam.reset_client()
    emu.faults.latency(0.8, endpoint="session.create")  # the emulator creates it after 0.8 s
    return nullcontext()


def _malformed(
    emu: Emulator, settings: object, attempts: list[int]
) -> AbstractContextManager[None]:
    emu.faults.malformed(endpoint="session.create")
    return nullcontext()


def _truncated(
    emu: Emulator, settings: object, attempts: list[int]
) -> AbstractContextManager[None]:
    emu.faults.truncated(endpoint="session.create")
    return nullcontext()


def _commit_fails(
    emu: Emulator, settings: object, attempts: list[int]
) -> AbstractContextManager[None]:
    return refuse_session_inserts()


FAULTS = [
    Fault("connection refused", _refused, "failed", "unreachable", 0, "none", ""),
    Fault(
        "timeout after the request was sent",
        _timeout,
        "unknown",
        "did not answer in time",
        1,
        "unnamed",
        "unverifiable",
    ),
    Fault(
        "429 with Retry-After", _queued(429, retry_after=7), "failed", "retry in 7 s", 1, "none", ""
    ),
    Fault("500", _queued(500), "unknown", "HTTP 500", 1, "none", "unverifiable"),
    Fault("502", _queued(502), "unknown", "HTTP 502", 1, "none", "unverifiable"),
    Fault("503", _queued(503), "failed", "HTTP 503", 1, "none", ""),
    Fault("504", _queued(504), "unknown", "HTTP 504", 1, "none", "unverifiable"),
    Fault(
        "malformed 2xx body", _malformed, "unknown", "malformed answer", 1, "none", "unverifiable"
    ),
    Fault(
        "truncated 2xx body",
        _truncated,
        "unknown",
        "connection to Composio broke",
        1,
        "unnamed",
        "unverifiable",
    ),
    Fault(
        "Composio succeeds, our commit fails",
        _commit_fails,
        "unknown",
        "could not store it",
        1,
        "named",
        "adopted|deleted",
    ),
]


def _wait_for_sessions(emu: Emulator, count: int) -> None:
    # A timed-out create still runs at the emulator after its latency: wait for it to land.
    deadline = time.monotonic() + 5
    while len(emu.sessions) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def assert_no_half_written_session(result: sessions.SessionResult, old: Session | None) -> None:
    """No session row or toolkit link was written; the old session (on a refresh) is intact."""
    if old is None:
        assert not Session.objects.exists() and not SessionToolkit.objects.exists()
        return
    [kept] = Session.objects.all()
    assert (kept.pk, kept.session_id, kept.status, kept.superseded_at) == (
        old.pk,
        old.session_id,
        "active",
        None,
    )
    assert kept.mcp_url == old.mcp_url and kept.toolkits == ["github"]
    assert list(SessionToolkit.objects.values_list("session_id", flat=True)) == [old.pk]
    assert result.session == old


def assert_the_attempt_is_recorded(
    fault: Fault, kind: str, end_user: EndUser, events_before: int
) -> SessionOperation:
    """The intent holds the outcome and exactly one audit event tells of the attempt; the intent."""
    intent = SessionOperation.objects.get(kind=kind)
    assert intent.state == fault.outcome and intent.error
    assert bool(intent.remote_session_id) == (fault.orphan == "named")
    [event] = AuditEvent.objects.filter(sequence__gt=events_before)
    assert (event.action, event.end_user_id) == (f"session.{kind}", end_user.pk)
    assert event.outcome == {"failed": "failure", "unknown": "unknown"}[fault.outcome]
    assert event.details["operation"] == str(intent.public_id)
    if fault.orphan == "named":
        # The event names the session Composio made, for reconciliation and for auditors.
        assert intent.remote_session_id in event.reason
        assert event.details["remote_session_id"] == intent.remote_session_id
    return intent


def assert_composio_got_at_most_one_create(
    catalog: Emulator, fault: Fault, start: int, attempts: list[int], sessions_before: set[str]
) -> set[str]:
    """Requests counted where they land: one create at most, never re-sent, nothing else; the
    sessions Composio holds now that it did not before (the orphans)."""
    sent = catalog.requests[start:]
    assert [r.endpoint for r in sent] == ["session.create"] * fault.requests
    if fault.name == "connection refused":
        assert len(attempts) == 1 + SAFE_RETRIES  # only the seam retries what was never sent
    if fault.orphan == "none":
        assert set(catalog.sessions) == sessions_before
    else:
        _wait_for_sessions(catalog, len(sessions_before) + 1)
        assert len(catalog.sessions) == len(sessions_before) + 1
    return set(catalog.sessions) - sessions_before


def assert_reconcile_settles_it(
    catalog: Emulator,
    fault: Fault,
    kind: str,
    intent: SessionOperation,
    old: Session | None,
    sessions_before: set[str],
    orphans: set[str],
) -> None:
    """With Composio healthy again, one run of `reconcile_sessions` settles the intent (adopts or
    deletes what Composio made) and a second finds nothing to do."""
    code, report = run_reconcile()

    assert code == 0, report
    if not fault.reconcile:
        assert report == "Nothing to reconcile.\n"  # Composio did nothing; nothing is open
    else:
        assert fault.reconcile.split("|")[0 if kind == "create" else -1].upper() in report
        intent.refresh_from_db()
        assert intent.state == "resolved" and intent.resolution
        reconciled = AuditEvent.objects.get(action="session.reconcile")
        assert reconciled.details["operation"] == str(intent.public_id)
    if fault.orphan == "named" and kind == "create":
        # Adopted: the session Composio made is the user's active session now.
        [adopted] = Session.objects.filter(status="active")
        assert {adopted.session_id} == orphans and adopted.session_id in catalog.sessions
    elif fault.orphan == "named":
        # Deleted at Composio: the old session stays the active one.
        assert set(catalog.sessions) == sessions_before
        assert Session.objects.get(status="active") == old
    elif fault.orphan == "unnamed":
        # Composio cannot list sessions: nobody can find this one (see reliability-suites.md).
        assert "Composio lists no sessions" in report
        assert set(catalog.sessions) - sessions_before == orphans
        assert not Session.objects.filter(session_id__in=orphans).exists()
    # A second run finds nothing to do.
    assert run_reconcile() == (0, "Nothing to reconcile.\n")


@pytest.mark.parametrize("kind", ["create", "refresh"])
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_a_fault_leaves_no_half_written_session_and_reconcile_settles_it(
    catalog: Emulator, alice: EndUser, session_admin: User, settings, fault: Fault, kind: str
) -> None:
    old = give_session(alice, ["github"], session_admin) if kind == "refresh" else None
    sessions_before = set(catalog.sessions)
    events_before = last_sequence()
    start = len(catalog.requests)
    attempts: list[int] = []
    service = {
        "create": sessions.tool_router_session_create,
        "refresh": sessions.tool_router_session_refresh,
    }[kind]

    with fault.arm(catalog, settings, attempts):
        result = service(end_user=alice, toolkits=["gmail", "slack"], actor=session_admin)

    # The person is told, in a sentence that names the user and the cause.
    assert result.outcome == fault.outcome, result.message
    assert "usr_alice" in result.message and fault.message in result.message
    assert_no_half_written_session(result, old)
    intent = assert_the_attempt_is_recorded(fault, kind, alice, events_before)
    orphans = assert_composio_got_at_most_one_create(
        catalog, fault, start, attempts, sessions_before
    )
    catalog.faults.clear()
    settings.COMPOSIO_EMULATOR_URL = catalog.base_url
    composio_seam.reset_client()
    assert_reconcile_settles_it(catalog, fault, kind, intent, old, sessions_before, orphans)


# --- Deleting the old session after a refresh ---------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_a_failed_delete_of_the_old_session_is_kept_and_reconcile_deletes_it(
    catalog: Emulator, alice: EndUser, session_admin: User, status: int
) -> None:
    old = give_session(alice, ["github"], session_admin)
    catalog.faults.enqueue(status, endpoint="session.delete")

    result = sessions.tool_router_session_refresh(
        end_user=alice, toolkits=["gmail"], actor=session_admin
    )

    assert result.ok and "it will be retried" in result.message
    assert catalog.count("session.delete") == 1  # a delete is never re-sent by the SDK or us
    old.refresh_from_db()
    assert old.status == "superseded" and old.remote_delete_error and old.remote_deleted_at is None
    assert old.session_id in catalog.sessions

    code, report = run_reconcile()

    assert code == 0 and f"DELETED      session {old.session_id}" in report
    assert old.session_id not in catalog.sessions and catalog.count("session.delete") == 2
    assert run_reconcile() == (0, "Nothing to reconcile.\n")


# --- Reads: the seam's retries, never stacked with the SDK's ------------------------------------


@pytest.mark.parametrize(
    ("status", "requests"),
    [(502, 1 + SAFE_RETRIES), (503, 1 + SAFE_RETRIES), (504, 1 + SAFE_RETRIES), (500, 1), (429, 1)],
)
def test_a_read_is_retried_only_by_the_seam_and_only_for_gateway_errors(
    catalog: Emulator, alice: EndUser, session_admin: User, status: int, requests: int
) -> None:
    session = give_session(alice, ["github"], session_admin)
    catalog.faults.enqueue(status, endpoint="session.get", times=10)

    with pytest.raises(composio_seam.ComposioError):
        composio_seam.get_session(session.session_id)

    assert catalog.count("session.get") == requests  # the SDK's own retries would make 3x


def test_a_refused_connection_on_a_read_is_tried_three_times_in_all(
    catalog: Emulator, settings
) -> None:
    attempts: list[int] = []
    with connection_refused(settings, attempts), pytest.raises(composio_seam.ComposioUnavailable):
        composio_seam.get_session("trs_anything")

    assert len(attempts) == 1 + SAFE_RETRIES
