"""Benchmark: a bulk refresh of N end users by W `db_worker` processes against the emulator.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/trc_bench_bulk \\
        python bench/bulk.py [--users 10000] [--workers 8] [--latency 0.1] [--rate 60000]
                             [--small 2000] [--naive-users 300]

    python bench/bulk.py --pool [--users 10000] [--latency 0.1] [--threads 20] [--calls 8]

`--pool` (issue 16) runs the same refresh twice in one run, side by side: ONE `db_worker` process
working with a pool of `--threads` threads and at most `--calls` Composio calls in flight, then
`--calls` single-slot processes (one thread each, one call in flight each: the old way). For each
it prints the steady throughput as a ratio of min(rate budget, calls in flight / latency), the
worker's RSS when 1,000 items were done and at the end (the largest worker's, for the
processes), and the SQL statements one item costs (counted in this process on a small job run by
the same runner code in one thread). Record the machine's load average beside the figures.
`--pool --statements` prints that small job's statements only, grouped by shape, each with what
one item pays for it.

Creates the PostgreSQL database if it is missing (createdb), migrates, runs the Composio emulator
in this process with `--latency` seconds on every answer, seeds N end users each with an active
session (rows written directly: seeding is not what is measured), then starts a refresh job
(keep each user's toolkits) and W worker processes (`manage.py db_worker`), one runner slot each.

Prints, for the job: wall time, steady-state throughput (items finished between 10% and 90%),
the theoretical ceiling min(rate budget, concurrency / latency) in items/s (a refresh is two
calls: create the new session, delete the old), the ratio, and the peak RSS of the largest
worker (VmHWM). The same is run with `--small` users to show that worker memory does not grow
with the number of users. Then the naive way: one synchronous loop calling the refresh service
for `--naive-users` users in this process, extrapolated to N.

The emulator does not know the seeded sessions, so deleting the old one answers 404 (counted as
gone by the service); it costs one call with the same latency as a real delete.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trc_bench_bulk")
os.environ.setdefault("DJANGO_DEBUG", "false")
BENCH_KEY = "bench-emulator-key"

import logging  # noqa: E402

import django  # noqa: E402
from django.db.utils import OperationalError  # noqa: E402


def _ensure_database() -> None:
    from urllib.parse import urlsplit

    url = urlsplit(os.environ["DATABASE_URL"])
    if not url.scheme.startswith("postgres"):
        sys.exit("bench/bulk.py measures on PostgreSQL: set DATABASE_URL=postgres://...")
    name = url.path.lstrip("/")
    subprocess.run(
        ["createdb", "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432)]
        + ["-U", url.username or "postgres", name],
        capture_output=True,
        check=False,
    )


_ensure_database()
django.setup()
for _name in ("sessions_app.composio.seam", "django_tasks", "console.request"):
    logging.getLogger(_name).setLevel(logging.ERROR)

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Max, Min  # noqa: E402
from django.utils import timezone  # noqa: E402
from figures import machine  # noqa: E402  (bench/figures.py, beside this script)

from sessions_app.bulk import jobs as bulk  # noqa: E402
from sessions_app.bulk import progress  # noqa: E402
from sessions_app.composio import seam as composio_seam  # noqa: E402
from sessions_app.composio.emulator import Emulator, server  # noqa: E402
from sessions_app.models import (  # noqa: E402
    BulkJob,
    BulkJobItem,
    EndUser,
    SessionOperation,
    SessionToolkit,
    Toolkit,
    ToolRouterSession,
)
from sessions_app.tool_router import sessions, toolkit_catalog  # noqa: E402

PREFIX = "bench_bulk_"


def reset_data() -> None:
    """Remove what earlier runs left (only this benchmark's rows)."""
    BulkJobItem.objects.filter(end_user__external_id__startswith=PREFIX).delete()
    BulkJob.objects.filter(items__isnull=True).delete()
    users = EndUser.objects.filter(external_id__startswith=PREFIX)
    SessionToolkit.objects.filter(session__end_user__in=users).delete()
    ToolRouterSession.objects.filter(end_user__in=users).update(replaces=None)
    ToolRouterSession.objects.filter(end_user__in=users).delete()
    SessionOperation.objects.filter(end_user__in=users).delete()
    users.delete()
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.all().delete()


def seed(n: int) -> None:
    github = Toolkit.objects.get(slug="github")
    batch = 2000
    for start in range(0, n, batch):
        users = EndUser.objects.bulk_create(
            EndUser(external_id=f"{PREFIX}{i:06d}") for i in range(start, min(n, start + batch))
        )
        sessions = ToolRouterSession.objects.bulk_create(
            ToolRouterSession(
                end_user=u,
                session_id=f"trs_seed_{u.external_id}",
                mcp_url=f"http://127.0.0.1/tool_router/trs_seed_{u.external_id}/mcp",
                toolkits=["github"],
                config_version=1,
            )
            for u in users
        )
        SessionToolkit.objects.bulk_create(
            SessionToolkit(session=s, toolkit=github) for s in sessions
        )
        # Sessions from an earlier day, as a refresh job finds them: the access report's rollup
        # then changes on two days per item.
        ToolRouterSession.objects.filter(pk__in=[s.pk for s in sessions]).update(
            created_at=timezone.now() - timedelta(days=40)
        )


def worker_env(
    emulator: Emulator, args: argparse.Namespace, *, threads: int = 1, calls: int | None = None
) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "TASKS_BACKEND": "database",
        "COMPOSIO_API_KEY": "",
        "COMPOSIO_EMULATOR_URL": emulator.base_url,
        "COMPOSIO_EMULATOR_API_KEY": BENCH_KEY,
        "BULK_RATE_PER_MINUTE": str(args.rate),
        "BULK_CONCURRENCY": str(args.workers if calls is None else calls),
        "BULK_THREADS": str(threads),
        # The 404s of deleting seeded sessions the emulator never saw would fill the screen.
        "LOG_LEVEL": "ERROR",
    }


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_job(
    n: int,
    emulator: Emulator,
    args: argparse.Namespace,
    admin: User,
    *,
    processes: int | None = None,
    threads: int = 1,
    calls: int | None = None,
) -> dict:
    """One refresh job of `n` users by `processes` worker processes (default `--workers`), each
    with `threads` threads and `calls` calls in flight (default: one slot per process)."""
    processes = args.workers if processes is None else processes
    reset_data()
    seed(n)
    emulator.reset()  # also forgets faults: set the latency again
    emulator.faults.latency(args.latency)
    # The job's runner slots: one per process (a pooled process fills its slot with threads).
    settings.BULK_CONCURRENCY = processes
    settings.BULK_RATE_PER_MINUTE = args.rate
    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay"]
            + ["--interval", "0.2", "--worker-id", f"bench-{i}", "-v", "0"],
            cwd=ROOT,
            env=worker_env(emulator, args, threads=threads, calls=calls),
        )
        for i in range(processes)
    ]
    rss_at_1k = 0.0
    try:
        time.sleep(3)  # let them start (Django setup), as long-running workers would be
        started = time.monotonic()
        job = bulk.bulk_job_start(
            kind="refresh",
            end_users=EndUser.objects.filter(external_id__startswith=PREFIX),
            toolkits=None,
            actor=admin,
        )
        while True:
            time.sleep(1)
            job.refresh_from_db()
            if job.ended:
                break
            if not rss_at_1k and job.items.exclude(finished_at=None).count() >= 1000:
                rss_at_1k = max(peak_rss_mb(w.pid, "VmRSS") for w in workers)
            if not all(w.poll() is None for w in workers):
                raise SystemExit("a worker died")
        wall = time.monotonic() - started
        rss = max(peak_rss_mb(w.pid) for w in workers)
        rss_end = max(peak_rss_mb(w.pid, "VmRSS") for w in workers)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(30)
    finished = list(
        job.items.exclude(finished_at=None)
        .order_by("finished_at")
        .values_list("finished_at", flat=True)
    )
    lo, hi = int(len(finished) * 0.1), int(len(finished) * 0.9) - 1
    steady = (hi - lo) / (finished[hi] - finished[lo]).total_seconds()
    span = job.items.aggregate(first=Min("started_at"), last=Max("finished_at"))
    # Time inside one item (claimed -> settled): the two calls plus the service's own work.
    spans = [
        (f - s).total_seconds()
        for s, f in job.items.values_list("started_at", "finished_at").iterator(chunk_size=5000)
    ]
    item_time = sum(spans) / len(spans)
    return {
        "users": n,
        "counts": {k: v for k, v in job.counts.items() if v},
        "wall": wall,
        "first_to_last": (span["last"] - span["first"]).total_seconds(),
        # Where the wall time beyond the steady pace went: the longest stretch with no item
        # finished, and the items that needed more than one attempt.
        "longest_gap": max(
            ((b - a).total_seconds() for a, b in zip(finished, finished[1:], strict=False)),
            default=0.0,
        ),
        "retried": job.items.filter(attempts__gt=1).count(),
        # ... or before the first item started, or after the last finished until the job ended.
        "before_first": (span["first"] - job.created_at).total_seconds(),
        "after_last": (job.finished_at - span["last"]).total_seconds() if job.finished_at else 0.0,
        "steady": steady,
        "overall": n / wall,
        "rss": rss,
        "rss_at_1k": rss_at_1k,
        "rss_end": rss_end,
        "requests": emulator.count(None),
        "item_time": item_time,
        # Share of the time the slots were inside an item (the rest: queue and runner overhead).
        "busy": steady * item_time / (processes * threads),
    }


def statements_per_item(n: int, admin: User, *, show: bool = False) -> tuple[float, float]:
    """SQL statements one refreshed user costs: a refresh job of `n` users (no latency) run to
    its end by one runner in this process's thread, every statement counted (`show`: print
    them, grouped, with how many each item costs)."""
    from django.test.utils import CaptureQueriesContext

    from sessions_app.bulk import runner

    reset_data()
    seed(n)
    settings.BULK_CONCURRENCY = 1
    settings.BULK_THREADS = 1
    job = bulk.bulk_job_start(
        kind="refresh",
        end_users=EndUser.objects.filter(external_id__startswith=PREFIX),
        toolkits=None,
        actor=admin,
    )
    [(slot, token)] = job.runners.items()
    with CaptureQueriesContext(connection) as queries:
        runner.bulk_job_run_slot(job_id=job.pk, slot=int(slot), token=token)
    job.refresh_from_db()
    assert job.counts.get("succeeded") == n, job.counts
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
    work = [q for q in queries.captured_queries if not q["sql"].startswith(control)]
    if show:
        shapes = collections.Counter(
            re.sub(r"'[^']*'|\b\d+(\.\d+)?\b", "?", q["sql"])[:150] for q in work
        )
        for shape, count in shapes.most_common():
            print(f"{count / n:6.2f}  {shape}")
    return len(work) / n, len(queries.captured_queries) / n


def pool_mode(emulator: Emulator, args: argparse.Namespace, admin: User) -> None:
    """One pooled worker process and `--calls` single-slot processes, side by side."""
    per_item = progress.requests_per_item("refresh")
    budget = args.rate / 60 / per_item
    ceiling = min(budget, args.calls / (per_item * args.latency))
    print(machine())
    print(
        f"PostgreSQL {connection.pg_version // 10000}; {args.users} users, latency "
        f"{args.latency * 1000:.0f} ms, rate budget {args.rate}/min, {per_item} calls per user"
    )
    print(
        f"ceiling = min({budget:.1f} (budget), {args.calls} calls/({per_item} x "
        f"{args.latency}) = {args.calls / (per_item * args.latency):.1f}) = {ceiling:.1f} users/s"
    )
    emulator.faults.clear()
    work, everything = statements_per_item(args.count_users, admin, show=args.statements)
    print(
        f"SQL statements per item: {work:.1f}, {everything:.1f} with BEGIN, COMMIT and "
        f"savepoints (a refresh job of {args.count_users} users)"
    )
    if args.statements:
        return
    runs = [
        (f"1 process x {args.threads} threads, {args.calls} calls", 1, args.threads, args.calls),
        (f"{args.calls} processes x 1 slot", args.calls, 1, 1),
    ]
    for label, processes, threads, calls in runs:
        r = run_job(
            args.users, emulator, args, admin, processes=processes, threads=threads, calls=calls
        )
        print(
            f"{label:>30}: {r['counts']}; steady {r['steady']:.1f} users/s = "
            f"{r['steady'] / ceiling:.2f} of the ceiling; wall {r['wall']:.1f} s; RSS "
            f"{r['rss_at_1k']:.0f} MB at 1k items, {r['rss_end']:.0f} MB at {args.users} "
            f"(peak {r['rss']:.0f} MB, largest process; {processes} process(es)); first item "
            f"started to last finished {r['first_to_last']:.1f} s, longest stretch with none "
            f"finished {r['longest_gap']:.1f} s, {r['retried']} item(s) retried; job started to "
            f"first item {r['before_first']:.1f} s, last item to job ended {r['after_last']:.1f} s"
        )
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def naive(n: int, admin: User) -> float:
    """One synchronous loop in this process, the way an admin action would do it."""
    users = list(EndUser.objects.filter(external_id__startswith=PREFIX).order_by("pk")[:n])
    started = time.monotonic()
    for user in users:
        sessions.tool_router_session_refresh(end_user=user, toolkits=None, actor=admin)
    return n / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=2_000, help="second run for memory; 0: skip")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rate", type=int, default=60_000, help="BULK_RATE_PER_MINUTE")
    parser.add_argument("--naive-users", type=int, default=300)
    parser.add_argument("--pool", action="store_true", help="one pooled process vs N processes")
    parser.add_argument("--threads", type=int, default=20, help="--pool: BULK_THREADS")
    parser.add_argument("--calls", type=int, default=8, help="--pool: BULK_CONCURRENCY")
    parser.add_argument("--count-users", type=int, default=200, help="--pool: statements job")
    parser.add_argument(
        "--statements", action="store_true", help="--pool: print the statements job's SQL only"
    )
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    # Real servers answer without Nagle's delay; the emulator's two writes (headers, body) would
    # otherwise wait ~40 ms for the client's delayed ACK on every answer.
    server._Handler.disable_nagle_algorithm = True
    emulator = Emulator(api_key=BENCH_KEY, host="127.0.0.1", port=0).start()
    settings.COMPOSIO_API_KEY = ""
    settings.COMPOSIO_EMULATOR_URL = emulator.base_url
    settings.COMPOSIO_EMULATOR_API_KEY = BENCH_KEY
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    composio_seam.reset_client()
    try:
        toolkit_catalog.toolkit_catalog_sync()
    except OperationalError as exc:
        sys.exit(f"database not reachable: {exc}")
    Toolkit.objects.filter(slug__in=["github", "gmail"]).update(is_allowed=True)
    admin, _ = User.objects.get_or_create(
        username="bench_bulk_admin", defaults={"is_superuser": True, "is_staff": True}
    )
    emulator.faults.latency(args.latency)
    if args.pool:
        pool_mode(emulator, args, admin)
        reset_data()
        emulator.stop()
        return

    per_item = progress.requests_per_item("refresh")
    ceiling = min(args.rate / 60 / per_item, args.workers / (per_item * args.latency))
    print(machine())
    print(
        f"PostgreSQL {connection.pg_version // 10000}, "
        f"{args.workers} workers = {args.workers} slots, latency {args.latency * 1000:.0f} ms, "
        f"rate budget {args.rate}/min, {per_item} calls per refreshed user"
    )
    print(
        f"ceiling = min({args.rate / 60 / per_item:.1f} (budget), "
        f"{args.workers}/({per_item} x {args.latency}) = "
        f"{args.workers / (per_item * args.latency):.1f} (concurrency)) = {ceiling:.1f} users/s"
    )
    runs = [args.users] + ([args.small] if args.small else [])
    results = []
    for n in runs:
        r = run_job(n, emulator, args, admin)
        results.append(r)
        print(
            f"{n:>6} users: {r['counts']}; wall {r['wall']:.1f} s (incl. each worker's first "
            f"SDK import); steady {r['steady']:.1f} users/s = {r['steady'] / ceiling:.2f} of the "
            f"ceiling; overall {r['overall']:.1f} users/s; {r['requests']} requests; "
            f"peak worker RSS {r['rss']:.0f} MB"
        )
        print(
            f"        mean time inside an item {r['item_time'] * 1000:.0f} ms "
            f"(latency {per_item} x {args.latency * 1000:.0f} ms); slots busy "
            f"{r['busy']:.0%} of the time"
        )
    if args.naive_users:
        rate = naive(args.naive_users, admin)
        print(
            f" naive: one synchronous loop, {args.naive_users} users: {rate:.1f} users/s "
            f"-> {args.users} users would take {args.users / rate / 60:.1f} min "
            f"(bulk: {results[0]['wall'] / 60:.1f} min, {results[0]['steady'] / rate:.1f}x)"
        )
    reset_data()
    emulator.stop()


if __name__ == "__main__":
    main()
