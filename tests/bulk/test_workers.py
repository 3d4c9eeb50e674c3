"""Bulk jobs with the real queue: `db_worker` processes, killed and restarted (PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django_tasks_db.models import DBTaskResult

from sessions_app.bulk import jobs as bulk
from sessions_app.bulk import progress
from sessions_app.composio.emulator import Emulator
from sessions_app.models import BulkJob, EndUser, ToolRouterSession
from sessions_app.tool_router import sessions
from tests.factories import EMULATOR_KEY, PROJECT_ROOT, give_session, make_end_users, start_bulk_job

CALLS_PER_WORKER = 2
THREADS_PER_WORKER = 4
ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")

pytestmark = [
    pytest.mark.skipif(
        not ON_POSTGRES,
        reason="Worker processes must share the test database with the test; pytest-django's "
        "SQLite test database is in memory. Run with DATABASE_URL=postgres://...",
    ),
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    # Jobs wait in the database queue for the worker processes.
    pytest.mark.usefixtures("fast_bulk", "queued"),
]


def worker_env(emulator: Emulator) -> dict[str, str]:
    db = settings.DATABASES["default"]
    url = (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_DEBUG": "false",
        "TASKS_BACKEND": "database",
        "COMPOSIO_API_KEY": "",
        "COMPOSIO_EMULATOR_URL": emulator.base_url,
        "COMPOSIO_EMULATOR_API_KEY": EMULATOR_KEY,
        "BULK_RATE_PER_MINUTE": "600000",
        # Each worker runs its slot with a pool: 4 threads, at most 2 calls in flight.
        "BULK_THREADS": str(THREADS_PER_WORKER),
        "BULK_CONCURRENCY": str(CALLS_PER_WORKER),
        # Longer than any call here, including a worker's first (it imports the SDK, ~6 s).
        "BULK_LEASE_SECONDS": "12",
        "BULK_SLICE_SECONDS": "2",
        "BULK_DEADMAN_SECONDS": "4",
        "BULK_RETRY_BACKOFF_SECONDS": "0.05",
    }


@pytest.fixture
def workers(
    emulator: Emulator, tmp_path: Path
) -> Iterator[Callable[[int], list[subprocess.Popen]]]:
    started: list[subprocess.Popen] = []

    def start(count: int) -> list[subprocess.Popen]:
        batch = []
        for _ in range(count):
            n = len(started)
            log = (tmp_path / f"worker-{n}.log").open("w")
            process = subprocess.Popen(
                [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay"]
                + ["--interval", "0.1", "--worker-id", f"test-worker-{n}"],
                cwd=PROJECT_ROOT,
                env=worker_env(emulator),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            started.append(process)
            batch.append(process)
        return batch

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"Timed out waiting for {what}")


def test_a_job_survives_its_workers_being_killed_and_never_sends_a_create_twice(
    catalog: Emulator, session_admin: User, workers
) -> None:
    make_end_users(150, digits=4)
    catalog.faults.latency(0.03, endpoint="session.create")
    job = start_bulk_job("create", ["github"], session_admin)

    first = workers(2)
    wait_for(
        lambda: job.items.filter(state="succeeded").count() >= 40,
        timeout=90,
        what="the first workers to make progress",
    )
    for process in first:
        os.kill(process.pid, signal.SIGKILL)
    for process in first:
        process.wait(10)
    done_before = dict(job.items.filter(state="succeeded").values_list("end_user_id", "session_id"))
    assert len(done_before) < 150, "the job finished before the kill; slow the emulator down"
    # The killed workers' tasks stay "running" in the queue forever: nobody finishes them.
    assert DBTaskResult.objects.filter(status="RUNNING").exists()

    workers(2)
    wait_for(
        lambda: BulkJob.objects.get(pk=job.pk).ended, timeout=120, what="the resumed job to end"
    )

    job.refresh_from_db()
    counts = progress.item_counts(job)
    assert job.state == "finished"
    assert counts["pending"] == counts["running"] == 0
    assert sum(counts.values()) == 150
    # Items done before the kill were not touched again...
    assert (
        dict(job.items.filter(end_user_id__in=done_before).values_list("end_user_id", "session_id"))
        == done_before
    )
    # ... and no user got a second create at Composio: at most one per user, in total.
    creates = Counter(r.json["user_id"] for r in catalog.requests if r.endpoint == "session.create")
    assert max(creates.values()) == 1
    succeeded = job.items.filter(state="succeeded").values_list("end_user__external_id", flat=True)
    assert all(creates[user] == 1 for user in succeeded)
    # An item cut off by the kill after its intent was committed has an unknown outcome and
    # stays unknown (never re-sent): its create was in flight, or its thread was still waiting
    # for one of the worker's call slots (then Composio never saw it). At most one per thread
    # of the two killed workers.
    assert counts["unknown"] <= 2 * THREADS_PER_WORKER and counts["failed"] == 0
    assert counts["succeeded"] <= sum(creates.values()) <= counts["succeeded"] + counts["unknown"]
    for item in job.items.filter(state="unknown").select_related("end_user"):
        assert "worker stopped during the call" in item.last_error
        assert creates[item.end_user.external_id] <= 1
    assert counts["succeeded"] == ToolRouterSession.objects.filter(status="active").count()


def test_several_workers_share_one_job_and_its_rate_budget(
    catalog: Emulator, session_admin: User, workers
) -> None:
    make_end_users(60, digits=4)
    # Slow enough that one pooled worker cannot finish the job before the others have started.
    catalog.faults.latency(0.1, endpoint="session.create")
    job = start_bulk_job("create", ["slack"], session_admin)
    workers(3)
    wait_for(lambda: BulkJob.objects.get(pk=job.pk).ended, timeout=90, what="the job to end")
    job.refresh_from_db()
    errors = Counter(job.items.exclude(state="succeeded").values_list("state", "last_error"))
    assert job.counts["succeeded"] == 60, (job.counts, errors)
    assert catalog.count("session.create") == 60
    # Both slots ran, in different worker processes.
    ran = DBTaskResult.objects.filter(
        task_path="sessions_app.bulk.runner.bulk_job_run", status="SUCCESSFUL"
    )
    assert len({w for r in ran for w in r.worker_ids}) >= 2


def test_a_manual_refresh_while_the_job_holds_the_user_is_refused_and_leaves_one_session(
    catalog: Emulator, session_admin: User, alice: EndUser, immediate: None
) -> None:
    give_session(alice, ["github"], session_admin)
    catalog.reset()
    release = threading.Event()
    catalog.faults.hold("session.create", release)
    jobs: list[BulkJob] = []

    def run_job() -> None:
        try:
            jobs.append(
                bulk.bulk_job_start(
                    kind="refresh",
                    end_users=EndUser.objects.filter(pk=alice.pk),
                    toolkits=["gmail"],
                    actor=session_admin,
                )
            )
        finally:
            connection.close()

    thread = threading.Thread(target=run_job)
    thread.start()
    wait_for(lambda: catalog.count("session.create") == 1, timeout=20, what="the job's create")
    manual = sessions.tool_router_session_refresh(
        end_user=alice, toolkits=["slack"], actor=session_admin
    )
    release.set()
    thread.join(20)

    assert manual.outcome == "in_progress"
    assert "already in progress" in manual.message
    [job] = jobs
    assert job.items.get().state == "succeeded"
    [active] = ToolRouterSession.objects.filter(end_user=alice, status="active")
    assert active.toolkits == ["gmail"]
    assert catalog.count("session.create") == 1
