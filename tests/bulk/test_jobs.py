"""Bulk jobs through the session services and the emulator (immediate task backend)."""

from __future__ import annotations

import io
import random
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from sessions_app.bulk import jobs as bulk
from sessions_app.bulk import progress, runner, settle
from sessions_app.composio.emulator import Emulator
from sessions_app.models import (
    AuditEvent,
    BulkJob,
    BulkJobItem,
    EndUser,
    SessionOperation,
    ToolRouterSession,
)
from sessions_app.tool_router import rate_limit, sessions
from tests.factories import give_session, make_end_users, start_bulk_job

# Jobs run at once unless a test asks for the `queued` backend (which then wins).
pytestmark = pytest.mark.usefixtures("fast_bulk", "immediate")


def states(job: BulkJob) -> dict[str, int]:
    return {k: v for k, v in progress.item_counts(job).items() if v}


def test_a_create_job_gives_every_selected_user_a_session(
    catalog: Emulator, session_admin: User
) -> None:
    make_end_users(30)

    job = start_bulk_job("create", ["github"], session_admin)

    assert job.state == "finished"
    assert states(job) == {"succeeded": 30}
    assert job.counts["succeeded"] == 30
    assert catalog.count("session.create") == 30
    assert ToolRouterSession.objects.filter(status="active").count() == 30
    assert all(i.session_id for i in job.items.all())
    start, end = AuditEvent.objects.filter(action__startswith="bulk.").order_by("sequence")
    assert (start.action, end.action) == ("bulk.start", "bulk.end")
    assert end.details["counts"]["succeeded"] == 30


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


def test_cancelling_a_queued_job_skips_every_item_and_sends_nothing(
    catalog: Emulator, session_admin: User, queued: None
) -> None:
    make_end_users(25)
    job = start_bulk_job("create", ["github"], session_admin)
    assert job.state == "running" and states(job) == {"pending": 25}

    skipped = bulk.bulk_job_cancel(job=job, actor=session_admin)

    assert skipped == 25
    assert job.state == "cancelled" and states(job) == {"skipped": 25}
    assert "Cancelled by ada_admin" in job.items.first().last_error
    end = AuditEvent.objects.get(action="bulk.end")
    assert end.details["cancelled_by"] == "ada_admin" and end.details["state"] == "cancelled"
    assert catalog.count("session.create") == 0
    with pytest.raises(ValidationError, match="already ended"):
        bulk.bulk_job_cancel(job=job, actor=session_admin)


def test_a_cancelled_job_ends_only_after_the_item_in_flight_has_settled(
    catalog: Emulator, session_admin: User, queued: None
) -> None:
    make_end_users(3)
    job = start_bulk_job("create", ["github"], session_admin)
    item = runner._claim_next(job, "runner-a")
    assert item is not None

    bulk.bulk_job_cancel(job=job, actor=session_admin)
    assert job.state == "cancelling" and states(job) == {"running": 1, "skipped": 2}

    settle.process_item(job, item, token="runner-a", actor=session_admin)
    settle.finish_if_done(job.pk)
    job.refresh_from_db()
    assert job.state == "cancelled" and states(job) == {"succeeded": 1, "skipped": 2}


def test_retry_failed_resends_failed_items_but_never_unknown_ones(
    catalog: Emulator, session_admin: User
) -> None:
    make_end_users(6)
    catalog.faults.enqueue(400, endpoint="session.create", times=2)
    catalog.faults.truncated(endpoint="session.create")
    job = start_bulk_job("create", ["github"], session_admin)
    assert states(job) == {"failed": 2, "unknown": 1, "succeeded": 3}

    retried = bulk.bulk_job_retry_failed(job=job, actor=session_admin)

    assert retried == 2
    assert job.state == "finished" and states(job) == {"unknown": 1, "succeeded": 5}
    assert catalog.count("session.create") == 6 + 2
    assert bulk.bulk_job_retry_failed(job=job, actor=session_admin) == 0
    assert list(
        AuditEvent.objects.filter(action__startswith="bulk.")
        .order_by("sequence")
        .values_list("action", flat=True)
    ) == ["bulk.start", "bulk.end", "bulk.start", "bulk.end"]


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
    job = bulk.bulk_job_start(
        kind="create", end_users=EndUser.objects.all(), toolkits=["github"], actor=session_admin
    )
    item = runner._claim_next(job, "runner-a")

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


def test_a_refresh_job_keeps_each_users_toolkits_and_skips_users_without_a_session(
    catalog: Emulator, session_admin: User
) -> None:
    users = make_end_users(4)
    give_session(users[0], ["github"], session_admin)
    give_session(users[1], ["slack"], session_admin)

    job = start_bulk_job("refresh", None, session_admin)

    assert states(job) == {"succeeded": 2, "skipped": 2}
    active = dict(
        ToolRouterSession.objects.filter(status="active").values_list(
            "end_user__external_id", "toolkits"
        )
    )
    assert active == {users[0].external_id: ["github"], users[1].external_id: ["slack"]}
    assert catalog.count("session.delete") == 2
    skipped = job.items.filter(state="skipped").first()
    assert "no active session" in skipped.last_error


def test_a_user_locked_by_a_manual_change_is_skipped_with_the_reason(
    catalog: Emulator, session_admin: User
) -> None:
    make_end_users(3)
    busy = EndUser.objects.order_by("external_id").first()
    # A manual refresh of this user is in flight (its intent is committed, the call not done).
    SessionOperation.objects.create(kind="refresh", end_user=busy, actor=session_admin)

    job = start_bulk_job("create", ["github"], session_admin)

    item = job.items.get(end_user=busy)
    assert item.state == "skipped"
    assert "already in progress" in item.last_error
    assert states(job) == {"succeeded": 2, "skipped": 1}
    assert not ToolRouterSession.objects.filter(end_user=busy).exists()


def test_starting_needs_the_permission_of_the_operation(
    catalog: Emulator, support_user: User
) -> None:
    make_end_users(2)
    with pytest.raises(PermissionDenied):
        start_bulk_job("refresh", None, support_user)
    assert not BulkJob.objects.exists()
    refused = AuditEvent.objects.get(action="access.refused")
    assert refused.details["operation"] == "bulk.refresh"
    assert refused.details["missing"] == ["sessions_app.refresh_session"]


def test_starting_with_a_disallowed_toolkit_writes_nothing_and_says_why(
    catalog: Emulator, session_admin: User
) -> None:
    make_end_users(2)
    with pytest.raises(ValidationError, match="Not on the allow-list: jira"):
        start_bulk_job("create", ["github", "jira"], session_admin)
    assert not BulkJob.objects.exists() and not BulkJobItem.objects.exists()
    assert AuditEvent.objects.get(action="input.rejected").outcome == "rejected"
    assert catalog.count("session.create") == 0


def test_the_rate_budget_is_shared_and_makes_callers_wait_their_turn(db: None, settings) -> None:

    settings.BULK_RATE_PER_MINUTE = 600  # 10 per second
    settings.BULK_RATE_BURST = 2
    clock = [1000.0]
    waits = [rate_limit.reserve(1, now=lambda: clock[0]) for _ in range(5)]
    assert waits == pytest.approx([0, 0, 0.1, 0.2, 0.3])
    clock[0] += 10  # a quiet spell refills up to the burst only
    assert rate_limit.reserve(2, now=lambda: clock[0]) == 0
    assert rate_limit.reserve(1, now=lambda: clock[0]) == pytest.approx(0.1)


def run_queue_once() -> None:
    """Run every task that is due, in this process, as `db_worker --batch` does (its loop also
    closes old connections, which would end the test's transaction)."""
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    worker = Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
    while (task := DBTaskResult.objects.ready().first()) is not None:
        task.claim(worker.worker_id)
        worker.run_task(task)


def test_a_database_queue_worker_runs_the_job_and_its_stand_ins_then_stand_down(
    catalog: Emulator, session_admin: User, queued: None
) -> None:
    from django_tasks_db.models import DBTaskResult

    make_end_users(20)
    job = start_bulk_job("create", ["gmail"], session_admin)
    assert DBTaskResult.objects.filter(status="READY").count() == job.concurrency == 2

    run_queue_once()

    job.refresh_from_db()
    assert job.state == "finished" and states(job) == {"succeeded": 20}
    assert catalog.count("session.create") == 20
    # What is left: the stand-in of the slot that ran, due later; it stands down when it runs.
    [stand_in] = DBTaskResult.objects.filter(status="READY")
    job_id, slot, token = stand_in.args_kwargs["args"]
    assert runner.bulk_job_run_slot(job_id=job_id, slot=slot, token=token) == "superseded"


RUNNER_TASK_PATH = "sessions_app.bulk.runner.bulk_job_run"


@pytest.mark.parametrize("old_path", ["sessions_app.tasks.bulk_job_run"])
def test_runners_queued_under_an_old_task_path_still_find_the_task_and_run(
    catalog: Emulator, session_admin: User, queued: None, old_path: str
) -> None:
    from django_tasks_db.models import DBTaskResult

    make_end_users(4)
    job = bulk.bulk_job_start(
        kind="create", end_users=EndUser.objects.all(), toolkits=["gmail"], actor=session_admin
    )
    queued_runners = DBTaskResult.objects.filter(status="READY")
    assert set(queued_runners.values_list("task_path", flat=True)) == {RUNNER_TASK_PATH}
    # As if queued before the upgrade: django-tasks resolves the stored path with import_string.
    queued_runners.update(task_path=old_path)
    for stored in DBTaskResult.objects.filter(status="READY"):
        assert stored.task.func is runner.bulk_job_run.func
        assert stored.task.module_path == RUNNER_TASK_PATH

    run_queue_once()

    job.refresh_from_db()
    assert job.state == "finished" and states(job) == {"succeeded": 4}
    ran = DBTaskResult.objects.filter(task_path=old_path).values_list("status", flat=True)
    assert list(ran) == ["SUCCESSFUL", "SUCCESSFUL"]


def test_resuming_gives_every_slot_a_new_runner_and_retires_the_old_ones(
    catalog: Emulator, session_admin: User, queued: None
) -> None:
    from django.core.management import call_command
    from django_tasks_db.models import DBTaskResult

    make_end_users(5)
    job = start_bulk_job("create", ["gmail"], session_admin)
    old = dict(job.runners)

    call_command("bulk_resume", stdout=io.StringIO())

    job.refresh_from_db()
    assert set(job.runners) == set(old) and not set(job.runners.values()) & set(old.values())
    assert runner.bulk_job_run_slot(job_id=job.pk, slot=0, token=old["0"]) == "superseded"
    assert DBTaskResult.objects.filter(status="READY").count() == 4
    run_queue_once()
    job.refresh_from_db()
    assert job.state == "finished" and states(job) == {"succeeded": 5}


def test_an_item_whose_worker_died_is_settled_from_its_intent(
    catalog: Emulator, session_admin: User, queued: None
) -> None:
    make_end_users(3)
    job = start_bulk_job("create", ["gmail"], session_admin)
    never_sent, mid_call, done = (runner._claim_next(job, "dead-runner") for _ in range(3))
    # The dead runner got this far: one intent still pending, one call completed.
    SessionOperation.objects.create(kind="create", end_user=mid_call.end_user, actor=session_admin)
    give_session(done.end_user, ["gmail"], session_admin)
    job.items.update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    assert settle.recover_expired_items(job) == 3

    never_sent.refresh_from_db()
    mid_call.refresh_from_db()
    done.refresh_from_db()
    assert never_sent.state == "pending"
    assert mid_call.state == "unknown" and "Composio may have acted" in mid_call.last_error
    assert done.state == "succeeded" and done.session.end_user == done.end_user


def test_when_the_budget_binds_runners_still_send_at_the_budgets_pace(
    catalog: Emulator, session_admin: User, settings
) -> None:
    # 600 requests/minute = 10/s and no burst: every create waits 0.1 s for its turn; 15 creates
    # take about 1.5 s, and they do happen.
    settings.BULK_RATE_PER_MINUTE = 600
    settings.BULK_RATE_BURST = 1
    make_end_users(15)
    started = time.monotonic()

    job = start_bulk_job("create", ["github"], session_admin)

    elapsed = time.monotonic() - started
    assert states(job) == {"succeeded": 15}
    assert catalog.count("session.create") == 15
    assert 1.3 <= elapsed < 10
    creates = sorted(r.at for r in catalog.requests if r.endpoint == "session.create")
    # Never faster than the budget: any 6 consecutive requests span at least 0.5 s.
    assert min(b - a for a, b in zip(creates, creates[5:], strict=False)) >= 0.45
