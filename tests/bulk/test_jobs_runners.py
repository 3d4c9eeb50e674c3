"""The runners of bulk jobs: the database queue worker and the stand-ins, tasks queued under an old
path, `bulk_resume`, items of a dead worker settled from their intents, and the shared rate
budget that paces every runner."""

from __future__ import annotations

import io
import math
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sessions_app.bulk import runner, settle
from sessions_app.composio.emulator import Emulator
from sessions_app.models import SessionOperation, ToolRouterSession
from sessions_app.tool_router import rate_limit, toolkit_catalog
from tests.factories import give_session, make_end_users, start_bulk_job
from tests.helpers import item_states
from tests.task_queue import run_queue_once

# Jobs run at once unless a test asks for the `queued` backend (which then wins).
pytestmark = pytest.mark.usefixtures("fast_bulk", "immediate")


def test_a_database_queue_worker_runs_the_job_and_its_stand_ins_then_stand_down(
    catalog: Emulator, session_admin: User, queued: None
) -> None:
    from django_tasks_db.models import DBTaskResult

    make_end_users(20)
    job = start_bulk_job("create", ["gmail"], session_admin)
    assert DBTaskResult.objects.filter(status="READY").count() == job.concurrency == 2

    run_queue_once()

    job.refresh_from_db()
    assert job.state == "finished" and item_states(job) == {"succeeded": 20}
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
    job = start_bulk_job("create", ["gmail"], session_admin)
    queued_runners = DBTaskResult.objects.filter(status="READY")
    assert set(queued_runners.values_list("task_path", flat=True)) == {RUNNER_TASK_PATH}
    # As if queued before the upgrade: django-tasks resolves the stored path with import_string.
    queued_runners.update(task_path=old_path)
    for stored in DBTaskResult.objects.filter(status="READY"):
        assert stored.task.func is runner.bulk_job_run.func
        assert stored.task.module_path == RUNNER_TASK_PATH

    run_queue_once()

    job.refresh_from_db()
    assert job.state == "finished" and item_states(job) == {"succeeded": 4}
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
    assert job.state == "finished" and item_states(job) == {"succeeded": 5}


def test_an_item_whose_worker_died_is_settled_from_its_intent(
    catalog: Emulator, session_admin: User, queued: None
) -> None:
    make_end_users(3)
    job = start_bulk_job("create", ["gmail"], session_admin)
    never_sent, mid_call, done = runner._claim(job, "dead-runner", limit=3)
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


def test_items_settled_but_not_yet_written_when_the_worker_dies_are_settled_from_intents(
    catalog: Emulator, session_admin: User, queued: None
) -> None:
    # A runner writes its settled items a batch at a time; these two settled, then it died.
    make_end_users(2)
    job = start_bulk_job("create", ["gmail"], session_admin)
    items = runner._claim(job, "dead-runner", limit=2)
    unwritten: list[tuple[int, dict]] = []
    for item in items:
        state = settle.process_item(
            job,
            item,
            token="dead-runner",
            actor=session_admin,
            defer=lambda *a: unwritten.append(a),
        )
        assert state == "succeeded"
    assert len(unwritten) == 2 and item_states(job) == {"running": 2}
    job.items.update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    assert settle.recover_expired_items(job) == 2

    assert item_states(job) == {"succeeded": 2}
    assert catalog.count("session.create") == 2  # nothing sent twice
    # The runner's late write changes nothing: the items are no longer its own.
    settle.settle_many("dead-runner", unwritten)
    for item in job.items.select_related("session"):
        assert item.session.end_user_id == item.end_user_id and item.runner == ""


def run_the_slot(job) -> list[str]:
    """Run the job's one runner slot in this thread until the job is done; the SQL it sent."""
    [(slot, token)] = job.runners.items()
    with CaptureQueriesContext(connection) as queries:
        assert runner.bulk_job_run_slot(job_id=job.pk, slot=int(slot), token=token) == "done"
    return [q["sql"] for q in queries.captured_queries]


def batches_written_when_full(settings, monkeypatch) -> None:
    """One slot, and a batch written when full (or when the runner runs out of items), not a
    second after its first item settled however long the rest take on a busy machine."""
    settings.BULK_CONCURRENCY = 1
    monkeypatch.setattr(runner, "SETTLE_SECONDS", 60.0)


def test_a_runner_writes_its_settled_items_in_one_statement_per_batch(
    catalog: Emulator, session_admin: User, queued: None, settings, monkeypatch
) -> None:
    batches_written_when_full(settings, monkeypatch)
    make_end_users(runner.CLAIM_BATCH, digits=2)
    job = start_bulk_job("create", ["gmail"], session_admin)

    sent = run_the_slot(job)

    settles = [
        sql
        for sql in sent
        if sql.startswith('UPDATE "sessions_app_bulkjobitem" SET "state" = ')
        and "finished_at" in sql
    ]
    assert len(settles) == 1
    assert item_states(job) == {"succeeded": runner.CLAIM_BATCH}
    for item in job.items.select_related("session"):
        assert item.session.end_user_id == item.end_user_id
        # The time it was settled, as the database gives it back.
        assert timezone.now() - timedelta(minutes=5) < item.finished_at <= timezone.now()


def test_a_runner_records_the_old_sessions_remote_deletes_in_one_statement_per_batch(
    catalog: Emulator, session_admin: User, queued: None, settings, monkeypatch
) -> None:
    batches_written_when_full(settings, monkeypatch)
    users = make_end_users(runner.CLAIM_BATCH, digits=2)
    old = [give_session(user, ["github"], session_admin) for user in users]
    job = start_bulk_job("refresh", None, session_admin)

    sent = run_the_slot(job)

    recorded = [
        sql
        for sql in sent
        if sql.startswith('UPDATE "sessions_app_toolroutersession"') and "remote_deleted_at" in sql
    ]
    assert len(recorded) == 1
    assert item_states(job) == {"succeeded": runner.CLAIM_BATCH}
    for session in ToolRouterSession.objects.filter(pk__in=[s.pk for s in old]):
        assert session.status == "superseded" and session.remote_delete_error == ""
        assert session.superseded_at <= session.remote_deleted_at <= timezone.now()
        assert session.session_id not in catalog.sessions


def slot_runner(job, actor: User, *, threads: int) -> runner._Runner:
    """A runner (not started) of the job's one slot, with the slot's token, deferring."""
    [(slot, token)] = job.runners.items()
    return runner._Runner(
        job=job,
        slot=int(slot),
        token=token,
        deferring=True,
        deadline=math.inf,
        actor=actor,
        threads=threads,
    )


def settle_succeeded(pool: runner._Runner, item) -> None:
    """The item succeeded, as a runner's thread hands it over to be written with its batch."""
    done = {"state": "succeeded", "last_error": "", "finished_at": timezone.now()}
    pool._settled(item.pk, {**done, "session": None})


def test_a_runner_whose_last_item_another_thread_settles_meanwhile_ends_the_job(
    catalog: Emulator, session_admin: User, queued: None, settings, monkeypatch
) -> None:
    settings.BULK_CONCURRENCY = 1
    make_end_users(1, digits=1)
    job = start_bulk_job("create", ["gmail"], session_admin)
    pool = slot_runner(job, session_admin, threads=2)
    [item] = runner._claim(job, pool.token, limit=1)
    pool.busy = 1  # the runner's other thread holds the last item
    write = pool._write_settled

    def write_then_the_other_thread_lets_go(**kwargs: float) -> None:
        write(**kwargs)
        if pool.busy:  # it settles its item and lets go just after this thread's write
            settle_succeeded(pool, item)
            pool.busy -= 1

    monkeypatch.setattr(pool, "_write_settled", write_then_the_other_thread_lets_go)

    assert pool._nothing_to_claim() is False

    # Not "idle" (its own settled item read as still running): the job is done.
    assert pool.stopped == "done"
    assert item_states(job) == {"succeeded": 1}


def one_runner_holding_its_one_item(job, actor: User) -> runner._Runner:
    """A runner of the job's one slot that has claimed the job's one item."""
    pool = slot_runner(job, actor, threads=2)
    [item] = runner._claim(job, pool.token, limit=1)
    settle_succeeded(pool, item)
    return pool


# serialized_rollback: the flush after a transactional test would drop the role groups.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_last_thread_waits_for_another_threads_write_in_flight_and_ends_the_job(
    catalog: Emulator, session_admin: User, queued: None, settings, monkeypatch
) -> None:
    settings.BULK_CONCURRENCY = 1
    make_end_users(1, digits=1)
    job = start_bulk_job("create", ["gmail"], session_admin)
    pool = one_runner_holding_its_one_item(job, session_admin)
    writing = threading.Event()
    write = runner.settle_many

    def slow_write(token: str, settled: list) -> None:
        writing.set()
        time.sleep(0.5)  # the item still reads `running` to anyone who looks meanwhile
        write(token, settled)

    monkeypatch.setattr(runner, "settle_many", slow_write)

    def the_other_thread() -> None:
        try:
            pool._write_settled()
        finally:
            connection.close()

    other = threading.Thread(target=the_other_thread)
    other.start()
    assert writing.wait(10)
    assert pool._nothing_to_claim() is False
    other.join(10)
    assert not other.is_alive()

    assert pool.stopped == "done"
    assert item_states(job) == {"succeeded": 1}
    assert pool._ended() == "done"
    job.refresh_from_db()
    assert job.state == "finished"


def test_a_runner_that_stops_idle_while_the_last_item_is_written_still_ends_the_job(
    catalog: Emulator, session_admin: User, queued: None, settings
) -> None:
    # As another runner (another process) would: its last item taken to be written, not yet
    # written when this runner asks what is still running.
    settings.BULK_CONCURRENCY = 1
    make_end_users(1, digits=1)
    job = start_bulk_job("create", ["gmail"], session_admin)
    pool = one_runner_holding_its_one_item(job, session_admin)
    in_flight, pool.settled = pool.settled, []

    assert pool._nothing_to_claim() is False
    assert pool.stopped == "idle"
    settle.settle_many(pool.token, in_flight)  # that write lands

    assert pool._ended() == "idle"
    job.refresh_from_db()
    assert job.state == "finished"
    assert item_states(job) == {"succeeded": 1}


def test_a_runner_that_stops_idle_holding_a_claimed_batch_gives_it_back_and_goes_on(
    catalog: Emulator, session_admin: User, queued: None, settings
) -> None:
    from django_tasks_db.models import DBTaskResult

    settings.BULK_CONCURRENCY = 1
    make_end_users(3, digits=1)
    job = start_bulk_job("create", ["gmail"], session_admin)
    pool = slot_runner(job, session_admin, threads=1)
    # One thread claimed a batch just after another found nothing to claim and stopped idle.
    pool.claimed.extend((item, 0.0, {}) for item in runner._claim(job, pool.token, limit=3))
    pool._stop("idle")
    queued_before = DBTaskResult.objects.filter(status="READY").count()

    assert pool.run() == "sliced"

    assert item_states(job) == {"pending": 3}
    # The slot's continuation is queued now, with the slot's token: it sends the three.
    assert DBTaskResult.objects.filter(status="READY").count() == queued_before + 1
    run_queue_once()
    assert item_states(job) == {"succeeded": 3}
    assert catalog.count("session.create") == 3


def ten_a_second(settings, *, burst: int) -> None:
    """The shared rate budget at 600 requests a minute (10 a second), `burst` of them at once."""
    settings.BULK_RATE_PER_MINUTE = 600
    settings.BULK_RATE_BURST = burst


def test_the_rate_budget_is_shared_and_makes_callers_wait_their_turn(db: None, settings) -> None:
    ten_a_second(settings, burst=2)
    clock = [1000.0]
    waits = [rate_limit.reserve(1, now=lambda: clock[0]) for _ in range(5)]
    assert waits == pytest.approx([0, 0, 0.1, 0.2, 0.3])
    clock[0] += 10  # a quiet spell refills up to the burst only
    assert rate_limit.reserve(2, now=lambda: clock[0]) == 0
    assert rate_limit.reserve(1, now=lambda: clock[0]) == pytest.approx(0.1)


def test_when_the_budget_binds_runners_still_send_at_the_budgets_pace(
    catalog: Emulator, session_admin: User, settings
) -> None:
    # 600 requests/minute = 10/s and no burst: every create waits 0.1 s for its turn; 15 creates
    # take about 1.5 s, and they do happen.
    ten_a_second(settings, burst=1)
    make_end_users(15)
    started = time.monotonic()

    job = start_bulk_job("create", ["github"], session_admin)

    elapsed = time.monotonic() - started
    assert item_states(job) == {"succeeded": 15}
    assert catalog.count("session.create") == 15
    assert 1.3 <= elapsed < 10
    creates = sorted(r.at for r in catalog.requests if r.endpoint == "session.create")
    # Never faster than the budget: any 6 consecutive requests span at least 0.5 s.
    assert min(b - a for a, b in zip(creates, creates[5:], strict=False)) >= 0.45


def test_the_pace_holds_back_only_a_backlog_beyond_the_burst() -> None:
    # 10 tokens a second, 3 at once, 1 per call: 0.1 s per call, a backlog may start 3 at once.
    pace = rate_limit.Pacer(1, per_minute=600, capacity=3)
    # On time (due every 0.1 s, each sent when due): nothing is held back.
    assert [pace.start(due, now=due) for due in (10.0, 10.1, 10.2, 10.3)] == pytest.approx(
        [10.0, 10.1, 10.2, 10.3]
    )
    # Six calls were due during a 5 s stall; the sender wakes at 20.0: three go at once (the
    # burst), the rest at the budget's pace.
    pace = rate_limit.Pacer(1, per_minute=600, capacity=3)
    starts = [pace.start(due, now=20.0) for due in (15.0, 15.1, 15.2, 15.3, 15.4, 15.5)]
    assert starts == pytest.approx([20.0, 20.0, 20.0, 20.1, 20.2, 20.3])
    # Due in the future: waits for its due time, and the pace counts from then.
    assert pace.start(25.0, now=20.3) == 25.0
    assert pace.start(25.0, now=20.3) == 25.0  # within the burst again after the quiet spell


def test_a_runner_that_fell_behind_its_items_due_times_sends_them_at_the_budgets_pace(
    catalog: Emulator, session_admin: User, queued: None, settings
) -> None:
    # Its process starved of CPU, a runner finds a claimed batch long past due: paid for, but
    # sending it at once would put Composio's traffic ahead of the shared bucket. Four calls a
    # second, two at once: a call every 0.25 s, far longer than sending one takes.
    settings.BULK_RATE_PER_MINUTE = 240
    settings.BULK_RATE_BURST = 2
    settings.BULK_CONCURRENCY = 1
    make_end_users(8, digits=1)
    job = start_bulk_job("create", ["gmail"], session_admin)
    pool = slot_runner(job, session_admin, threads=1)
    toolkits = toolkit_catalog.read_toolkits()
    pool.claimed.extend(
        (item, time.monotonic() - 60, toolkits) for item in runner._claim(job, pool.token, limit=8)
    )

    pool.run()

    assert item_states(job) == {"succeeded": 8}
    creates = sorted(r.at for r in catalog.requests if r.endpoint == "session.create")
    assert len(creates) == 8
    # Two at once (the burst), then one every 0.25 s: six in a row span at least 1 s (at once,
    # without the pace, the eight take a few hundredths of a second).
    assert min(b - a for a, b in zip(creates, creates[5:], strict=False)) >= 0.8


def test_a_runner_imports_the_sdk_before_it_pays_for_its_first_batch(
    catalog: Emulator, session_admin: User, settings, monkeypatch
) -> None:
    # The SDK's first import takes seconds in a fresh worker process: paid for during it, a
    # batch's turns would go by with every thread held at its first call.
    from sessions_app.tool_router import health

    order: list[str] = []
    real_warm_up, real_reserve_many = health.warm_up, rate_limit.reserve_many

    def warm_up() -> None:
        order.append("warm up")
        real_warm_up()

    def reserve_many(count: int, cost: float = 1.0, **kwargs) -> list[float]:
        order.append("pay")
        return real_reserve_many(count, cost, **kwargs)

    monkeypatch.setattr(health, "warm_up", warm_up)
    monkeypatch.setattr(rate_limit, "reserve_many", reserve_many)
    make_end_users(3, digits=1)

    job = start_bulk_job("create", ["gmail"], session_admin)

    assert item_states(job) == {"succeeded": 3}
    assert order[0] == "warm up" and "pay" in order


# What one refreshed user costs the database, whatever the number of users (issue 16): a batch's
# claim, payment and toolkit reading are shared by its items. Statements sent, not counting the
# savepoints the test's own transaction turns each atomic block into (BEGIN/COMMIT outside it).
# Measured: 10.75 on SQLite, 11.6 on PostgreSQL, which also takes the audit chain's advisory lock
# (13.2 and 14.2 at the last stop, 19.2 and 27 before that: docs/bulk.md says what went). The
# issue's goal is 12; SQLite is held to one fewer.
STATEMENTS_PER_REFRESH = {"postgresql": 12, "sqlite": 11}


def test_a_refreshed_user_costs_a_bounded_number_of_sql_statements(
    catalog: Emulator, session_admin: User, queued: None, settings
) -> None:
    settings.BULK_CONCURRENCY = 1  # one slot: its runner, in this thread, does every item
    users = make_end_users(runner.CLAIM_BATCH * 2, digits=2)
    for user in users:
        give_session(user, ["github"], session_admin)
    # Sessions from an earlier day, as a refresh job usually finds them: the access report's
    # rollup then changes on two days.
    ToolRouterSession.objects.update(created_at=timezone.now() - timedelta(days=40))
    job = start_bulk_job("refresh", None, session_admin)

    sent = [sql for sql in run_the_slot(job) if "SAVEPOINT" not in sql]

    assert item_states(job) == {"succeeded": len(users)}
    per_user = len(sent) / len(users)
    assert per_user <= STATEMENTS_PER_REFRESH[connection.vendor], per_user
