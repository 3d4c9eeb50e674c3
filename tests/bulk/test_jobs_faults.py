"""Bulk jobs under Composio's faults: a thousand users with every kind of fault all end in a
terminal state, 503s are retried up to the limit, and retries follow the cause the session
service returns."""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from sessions_app.bulk import progress, runner, settle
from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, SessionOperation, ToolRouterSession
from sessions_app.tool_router import sessions
from tests.factories import make_end_users, start_bulk_job

# Jobs run at once unless a test asks for the `queued` backend (which then wins).
pytestmark = pytest.mark.usefixtures("fast_bulk", "immediate")


class FaultInjector(threading.Thread):
    """Queues a fault at the emulator when its create count reaches chosen points."""

    def __init__(self, emulator: Emulator, plan: dict[int, str], read_timeout: float) -> None:
        super().__init__(daemon=True)
        self.emulator = emulator
        self.plan = dict(plan)
        self.read_timeout = read_timeout
        self.stop = threading.Event()

    def run(self) -> None:
        while self.plan and not self.stop.is_set():
            seen = self.emulator.count("session.create")
            due = sorted(point for point in self.plan if point <= seen)
            if not due:
                time.sleep(0.003)
                continue
            kind = self.plan.pop(due[0])
            if kind == "timeout":
                release = threading.Event()
                self.emulator.faults.hold("session.create", release)
                deadline = time.monotonic() + 5
                while self.emulator.count("session.create") == seen and time.monotonic() < deadline:
                    time.sleep(0.003)
                time.sleep(self.read_timeout + 0.05)
                release.set()
            elif kind == "drop":
                self.emulator.faults.drop(endpoint="session.create")
            else:
                self.emulator.faults.enqueue(int(kind), endpoint="session.create")


def test_a_thousand_users_with_faults_all_end_in_a_terminal_state_and_nothing_is_lost(
    catalog: Emulator, session_admin: User, settings
) -> None:
    settings.COMPOSIO_READ_TIMEOUT = 0.3
    settings.BULK_MAX_ATTEMPTS = 6
    make_end_users(1000)
    rng = random.Random(6)
    points = rng.sample(range(20, 1000), 50 + 10 + 4 + 4)
    plan = dict.fromkeys(points[:50], "503")
    plan |= dict.fromkeys(points[50:60], "400")
    plan |= dict.fromkeys(points[60:64], "timeout")
    plan |= dict.fromkeys(points[64:], "drop")
    # A burst of 429s on the first three requests: each pauses the whole job for 1 s.
    catalog.faults.enqueue(429, endpoint="session.create", retry_after=1, times=3)
    injector = FaultInjector(catalog, plan, read_timeout=0.3)
    injector.start()
    try:
        job = start_bulk_job("create", ["github", "slack"], session_admin)
    finally:
        injector.stop.set()
        injector.join(5)

    counts = progress.item_counts(job)
    assert job.state == "finished"
    assert counts["pending"] == counts["running"] == 0
    assert sum(counts.values()) == 1000 == job.items.count()
    # Every call the job made reached the emulator once; none was made twice by accident.
    creates = [r for r in catalog.requests if r.endpoint == "session.create"]
    assert len(creates) == sum(job.items.values_list("attempts", flat=True))
    # The 429 burst: after each, nothing reached the emulator for Retry-After (1 s).
    creates.sort(key=lambda r: r.at)
    for before, after in zip(creates[:3], creates[1:4], strict=True):
        assert after.at - before.at >= 1.0
    # 400s fail their item for good; 503s were retried (some items needed several calls).
    failed = job.items.filter(state="failed")
    assert failed.filter(last_error__contains="HTTP 400").count() == 10
    assert job.items.filter(state="succeeded", attempts__gt=1).count() >= 40
    # Possibly-sent creates (timeouts, broken connections) are unknown and were never re-sent.
    unknown = list(job.items.filter(state="unknown").select_related("end_user"))
    assert len(unknown) >= 8
    per_user = {}
    for request in creates:
        per_user.setdefault(request.json["user_id"], []).append(request)
    for item in unknown:
        assert len(per_user[item.end_user.external_id]) == item.attempts
    assert SessionOperation.objects.filter(state="unknown").count() == len(unknown)
    # What succeeded is stored: one active session per succeeded user, none for the others.
    assert counts["succeeded"] == ToolRouterSession.objects.filter(status="active").count()
    assert counts["succeeded"] >= 1000 - 10 - len(unknown) - counts["failed"]
    end = AuditEvent.objects.get(action="bulk.end")
    assert end.outcome == "failure" and end.details["counts"] == counts


def test_503s_are_retried_up_to_the_limit_then_the_item_fails(
    catalog: Emulator, session_admin: User, settings
) -> None:
    settings.BULK_MAX_ATTEMPTS = 3
    make_end_users(1)
    catalog.faults.enqueue(503, endpoint="session.create", times=3)

    job = start_bulk_job("create", ["github"], session_admin)

    item = job.items.get()
    assert (item.state, item.attempts) == ("failed", 3)
    assert item.last_error.startswith("Gave up after 3 attempts.")
    assert catalog.count("session.create") == 3


@pytest.mark.parametrize(
    ("cause", "retry_after", "state"),
    [
        (sessions.Cause.RATE_LIMITED, 7, "pending"),
        (sessions.Cause.TRANSIENT, None, "pending"),
        (sessions.Cause.PERMANENT, None, "failed"),
    ],
)
def test_retries_follow_the_cause_the_service_returns_not_the_audit_trail(
    catalog: Emulator,
    session_admin: User,
    queued: None,
    monkeypatch: pytest.MonkeyPatch,
    cause: str,
    retry_after: int | None,
    state: str,
) -> None:
    make_end_users(1)
    job = start_bulk_job("create", ["github"], session_admin)
    [item] = runner._claim(job, "runner-a", limit=1)

    def answer(*, end_user: EndUser, **_: object) -> sessions.SessionResult:
        # No intent and no audit event: only the result says why the call failed.
        return sessions.SessionResult(
            end_user=end_user,
            outcome=sessions.Outcome.FAILED,
            message="Could not create a session.",
            cause=cause,
            retry_after=retry_after,
        )

    monkeypatch.setattr(sessions, "tool_router_session_create", answer)
    assert settle.process_item(job, item, token="runner-a", actor=session_admin) == state

    item.refresh_from_db()
    job.refresh_from_db()
    assert item.state == state
    if cause == sessions.Cause.RATE_LIMITED:
        assert "paused for 7 s" in item.last_error
        assert 5 < (job.paused_until - timezone.now()).total_seconds() <= 7
    else:
        assert job.paused_until is None
    assert (item.not_before is not None) == (cause == sessions.Cause.TRANSIENT)
