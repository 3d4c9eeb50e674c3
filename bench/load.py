"""Load benchmark: support staff on gunicorn while a bulk refresh job runs (see docs/load.md).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/trc_bench_load \\
        python bench/load.py [--users 50] [--duration 60] [--end-users 1000000] [--bulk 2000]

1. Ensures the data: N end users with sessions (bench/lookup.py's seeder; kept between runs), one
   staff account per simulated user (Support group, a known password) and a session admin who
   starts the bulk job.
2. Starts, on free loopback ports: the Composio emulator (`manage.py composio_emulator`),
   gunicorn with the production config (`gunicorn console.wsgi -c gunicorn.conf.py`, DEBUG off)
   and `manage.py db_worker` (`--db-workers`, default one); syncs the toolkit catalog and starts
   a bulk refresh job over `--bulk` random end users.
3. Runs locust headless (bench/locustfile.py): every simulated user logs in through the real
   form, then loops lookup (htmx) -> card -> 1 in 10 a reveal (POST with CSRF), with a think
   time between actions. The measured window starts when the last user has logged in and lasts
   `--duration` seconds; it holds the requests sent in it (not those sent earlier, queued behind
   the sign-ins' password hashing, that end in it).
4. Prints p50/p95/p99 per request kind and overall, requests and errors; the bulk job's
   throughput during the window and whether the requests the emulator received stayed within
   the job's rate budget; CPU per process group (what dominates on this machine).

Knee mode (`--knee 40,80,120,...`): the same servers and the same bulk job, then one locust run per
step with that many support users (each logs in, then `--duration` measured seconds), the rate
rising step by step. After each step it prints the rate served and the lookup and card p95; at the
end the highest rate at which both stayed under 50 ms with 0 errors (the knee), beside the cores
and the load average. The request rate follows from users / (think time + latency): use a short
think time (`--think-min 0.5 --think-max 1.5`) to reach high rates with few users.

Every process it starts is stopped in a `finally` (process groups: gunicorn's workers too).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from figures import machine, pct  # bench/figures.py, beside this script
from processes import Processes, free_port  # bench/processes.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
PASSWORD = "load-bench-support-password"  # noqa: S105 (benchmark accounts on a bench database)
STAFF_PREFIX = "load_support_"
ADMIN = "load_session_admin"
KINDS = ("lookup", "card", "reveal")
TARGET_P95_MS = 50.0


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="concurrent support users")
    parser.add_argument("--duration", type=float, default=60, help="measured seconds")
    parser.add_argument("--end-users", type=int, default=1_000_000, help="end users in the data")
    parser.add_argument("--bulk", type=int, default=2000, help="end users the bulk job refreshes")
    parser.add_argument("--think-min", type=float, default=1.0, help="pause between actions (s)")
    parser.add_argument("--think-max", type=float, default=3.0)
    parser.add_argument("--reveal-every", type=int, default=10, help="1 in N iterations reveals")
    parser.add_argument("--spawn-rate", type=float, default=5, help="users logging in per second")
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap on requests")
    parser.add_argument(
        "--emulator-latency", type=float, default=0.05, help="seconds added to each Composio call"
    )
    parser.add_argument("--db-workers", type=int, default=1, help="db_worker processes")
    parser.add_argument(
        "--knee",
        type=lambda text: [int(n) for n in text.split(",") if n.strip()],
        default=None,
        help="support users per step, rising (e.g. 40,80,120,160): find the highest rate served "
        "with lookup and card p95 < 50 ms and 0 errors",
    )
    parser.add_argument("--gunicorn-workers", type=int, default=None, help="default: the config's")
    parser.add_argument(
        "--allow-sqlite", action="store_true", help="a smoke run on SQLite (figures meaningless)"
    )
    return parser.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if __name__ == "__main__":
    if not DATABASE_URL.startswith(("postgres://", "postgresql://", "sqlite://")):
        sys.exit(
            "Set DATABASE_URL to a dedicated PostgreSQL database, e.g.\n"
            "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/trc_bench_load python bench/load.py"
        )
    if DATABASE_URL.startswith("sqlite") and not ARGS.allow_sqlite:
        sys.exit(
            "Refusing SQLite: the load benchmark is about PostgreSQL (one writer at a time would "
            "make the figures meaningless). Pass --allow-sqlite for a smoke run."
        )
EMULATOR_PORT, WEB_PORT = free_port(), free_port()
EMULATOR_URL = f"http://127.0.0.1:{EMULATOR_PORT}"
WEB_URL = f"http://127.0.0.1:{WEB_PORT}"
# The console must talk to this emulator, never to a real Composio named in the environment.
ENV_OVERRIDES = {
    "DJANGO_SETTINGS_MODULE": "console.settings",
    "COMPOSIO_API_KEY": "",
    "COMPOSIO_BASE_URL": "",
    "COMPOSIO_EMULATOR_URL": EMULATOR_URL,
    "DJANGO_DEBUG": "false",
    "DJANGO_SECURE": "false",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    "LOGIN_FAILURE_LIMIT": "1000000",
    "LOGIN_RATE": "",  # every simulated person signs in from 127.0.0.1 at once
    "SUPPORT_REVEALS_PER_HOUR": "1000000",
}
os.environ.update(ENV_OVERRIDES)
sys.path[:0] = [str(ROOT), str(BENCH)]

import django  # noqa: E402

django.setup()

import logging  # noqa: E402

import lookup  # noqa: E402  (bench/lookup.py: the seeder of the 1M end users)
import psutil  # noqa: E402  (installed with locust)
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from sessions_app import roles  # noqa: E402
from sessions_app.bulk import jobs as bulk  # noqa: E402
from sessions_app.bulk import progress  # noqa: E402
from sessions_app.models import BulkJob, BulkJobItem, EndUser, Toolkit  # noqa: E402
from sessions_app.tool_router import rate_limit, toolkit_catalog  # noqa: E402

for _name in ("console.request", "axes", "sessions_app"):
    logging.getLogger(_name).setLevel(logging.WARNING)


# --- Data --------------------------------------------------------------------------------------


def ensure_staff(count: int) -> tuple[list[list[str]], User]:
    """`count` Support accounts and one Session admin, all with the benchmark password."""
    hashed = make_password(PASSWORD)  # one hash (PBKDF2) for all: creating them stays quick
    support = Group.objects.get(name=roles.SUPPORT)
    names = [f"{STAFF_PREFIX}{i:03d}" for i in range(count)]
    have = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    User.objects.bulk_create(
        User(username=name, password=hashed, is_staff=True) for name in names if name not in have
    )
    User.objects.filter(username__in=names).update(password=hashed, is_active=True)
    for user in User.objects.filter(username__in=names).exclude(groups=support):
        user.groups.add(support)
    admin, _ = User.objects.get_or_create(username=ADMIN, defaults={"is_staff": True})
    admin.groups.add(Group.objects.get(name=roles.SESSION_ADMIN))
    return [[name, PASSWORD] for name in names], admin


def random_end_user_pks(count: int, rng: random.Random) -> list[int]:
    low = EndUser.objects.order_by("pk").values_list("pk", flat=True).first()
    high = EndUser.objects.order_by("-pk").values_list("pk", flat=True).first()
    picks = rng.sample(range(low, high + 1), min(count * 2, high - low + 1))
    found: list[int] = []
    for start in range(0, len(picks), 5000):
        found += EndUser.objects.filter(pk__in=picks[start : start + 5000]).values_list(
            "pk", flat=True
        )
    return found[:count]


def write_targets(path: Path, rng: random.Random, count: int = 20_000) -> int:
    pks = random_end_user_pks(count, rng)
    rows = EndUser.objects.filter(pk__in=pks).values_list("external_id", "email")
    lines = [f"{external_id}\t{email}" for external_id, email in rows.iterator(chunk_size=5000)]
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def settle_old_jobs(admin: User) -> None:
    """Cancel jobs an earlier run left running, so their tasks do not compete with this one."""
    for job in BulkJob.objects.filter(
        started_by_username=ADMIN, state__in=[BulkJob.State.RUNNING, BulkJob.State.CANCELLING]
    ):
        if job.state == BulkJob.State.RUNNING:
            bulk.bulk_job_cancel(job=job, actor=admin)
        BulkJob.objects.filter(pk=job.pk).update(
            state=BulkJob.State.CANCELLED, finished_at=datetime.now(UTC), runners={}
        )
    with connection.cursor() as cursor:
        # Tasks queued for those jobs (runner slots, stand-ins) would wake up in our worker.
        cursor.execute(
            "DELETE FROM django_tasks_database_dbtaskresult WHERE status IN ('READY', 'RUNNING')"
        )


# --- Processes ---------------------------------------------------------------------------------


def _get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
        return json.loads(response.read())


def wait_for(url: str, what: str, processes: Processes, name: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not processes.running(name):
            sys.exit(f"{what} exited early; see {processes.logs / (name + '.log')}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    sys.exit(f"{what} did not answer {url} within {seconds:.0f} s")


# --- CPU accounting ----------------------------------------------------------------------------


def _tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of a process and its live children (reaped children: in the parent's)."""
    out: dict[int, float] = {}
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return out
    for proc in procs:
        try:
            t = proc.cpu_times()
            out[proc.pid] = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return out


def cpu_snapshot(processes: Processes) -> dict[str, Any]:
    groups: dict[str, dict[int, float]] = {
        name: _tree_cpu(pid) for name, pid in processes.pids().items()
    }
    ours = _tree_cpu(os.getpid())
    for pids in groups.values():
        for pid in pids:
            ours.pop(pid, None)  # our children are counted under their own names
    groups["load.py"] = ours
    backends: dict[int, float] = {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            rows = cursor.fetchall()
        for (pid,) in rows:
            try:
                t = psutil.Process(pid).cpu_times()
                backends[pid] = t.user + t.system
            except psutil.Error:
                continue
    groups["postgres (this db)"] = backends
    times = psutil.cpu_times()
    busy = sum(times) - times.idle - getattr(times, "iowait", 0.0)
    return {"at": time.time(), "groups": groups, "machine_busy": busy}


def cpu_between(first: dict[str, Any], last: dict[str, Any]) -> dict[str, float]:
    seconds = max(1e-6, last["at"] - first["at"])
    shares: dict[str, float] = {}
    for name, pids in last["groups"].items():
        before = first["groups"].get(name, {})
        used = sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in pids.items())
        shares[name] = used / seconds
    total = (last["machine_busy"] - first["machine_busy"]) / seconds
    shares["everything else on the machine"] = max(0.0, total - sum(shares.values()))
    shares["machine total"] = total
    return shares


def _nearest(snapshots: list[dict[str, Any]], at: float) -> dict[str, Any]:
    return min(snapshots, key=lambda s: abs(s["at"] - at))


# --- Figures -----------------------------------------------------------------------------------


def latency_table(samples: list[dict[str, Any]], kinds: Iterable[str], seconds: float) -> list[str]:
    lines = [
        f"{'kind':<14} {'requests':>8} {'errors':>6} {'req/s':>6} {'p50':>8} {'p95':>8} "
        f"{'p99':>8} {'max':>8}"
    ]
    lines.append("-" * len(lines[0]))
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for sample in samples:
        by_kind[sample["kind"]].append(sample)
    rows = [(kind, by_kind.get(kind, [])) for kind in kinds]
    rows.append(("overall", [s for kind in KINDS for s in by_kind.get(kind, [])]))
    for kind, items in rows:
        if not items:
            lines.append(f"{kind:<14} {0:>8}")
            continue
        ms = [s["ms"] for s in items]
        errors = sum(1 for s in items if not s["ok"])
        lines.append(
            f"{kind:<14} {len(items):>8} {errors:>6} {len(items) / seconds:>6.1f} "
            f"{pct(ms, 50):>6.1f}ms {pct(ms, 95):>6.1f}ms {pct(ms, 99):>6.1f}ms {max(ms):>6.1f}ms"
        )
    return lines


SERVER_LINE = re.compile(
    r"^(\S+ \S+) INFO console\.request \[\w*\] request method=(\w+) path=(\S+) "
    r"status=(\d+) duration_ms=([\d.]+)"
)


def in_window(samples: list[dict[str, Any]], start: float, seconds: float) -> list[dict[str, Any]]:
    """The samples of requests sent during the window: from `start` (the last login) for
    `seconds`. A request sent before it, queued behind the sign-ins' password hashing, is not
    the steady state, however late it ends."""
    return [s for s in samples if start <= s["end"] - s["ms"] / 1000 <= start + seconds]


def server_samples(log: Path) -> list[dict[str, Any]]:
    """The console's own request lines (time inside Django) from gunicorn's log, by kind."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        found = SERVER_LINE.match(line)
        if not found:
            continue
        stamp, method, path, status, ms = found.groups()
        if path == "/support/" and "htmx=True" in line:
            kind = "lookup"
        elif path.endswith("/reveal/"):
            kind = "reveal"
        elif path.startswith("/support/users/"):
            kind = "card"
        else:
            continue
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").astimezone().timestamp()
        ok = status == "200"
        out.append({"kind": kind, "ms": float(ms), "ok": ok, "end": at, "method": method})
    return out


def budget_check(times: list[float], per_minute: float, capacity: float) -> dict[str, float]:
    """How far the requests the emulator saw ever got ahead of the job's token bucket.

    For every pair of requests i <= j: (j - i + 1) <= capacity + rate * (t_j - t_i) if the sender
    kept to the bucket. The largest excess is computed in one pass; also the busiest 60 s and 10 s
    (as a per-minute rate)."""
    rate = per_minute / 60.0
    times = sorted(times)
    worst = float("-inf")
    worst_at = 0.0
    lowest = float("inf")
    for j, t in enumerate(times):
        lowest = min(lowest, j - rate * t)
        excess = (j - rate * t) - lowest + 1 - capacity
        if excess > worst:
            worst, worst_at = excess, t
    peaks = {}
    for window in (60.0, 10.0):
        best, i = 0, 0
        for j, t in enumerate(times):
            while t - times[i] >= window:
                i += 1
            best = max(best, j - i + 1)
        peaks[window] = best * 60.0 / window
    return {
        "excess": max(0.0, worst) if times else 0.0,
        "excess_at": worst_at,
        "peak60": peaks[60.0],
        "peak10": peaks[10.0],
    }


# --- The run -----------------------------------------------------------------------------------


def main() -> None:
    args = ARGS
    assert args is not None
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = ROOT / "var" / "load" / run_id
    logs.mkdir(parents=True, exist_ok=True)
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}; logs: {logs}")
    print(machine())
    if connection.vendor == "sqlite":
        print("WARNING: SQLite smoke run: writers queue on one lock; the figures mean nothing.")

    call_command("migrate", verbosity=0)
    lookup._refuse_foreign_data()
    lookup.seed(args.end_users)
    accounts, admin = ensure_staff(max([args.users, *(args.knee or [])]))
    settle_old_jobs(admin)
    rng = random.Random()
    targets = logs / "targets.tsv"
    print(f"targets: {write_targets(targets, rng)} end users to search for")
    total_end_users = EndUser.objects.count()

    processes = Processes(logs)
    job: BulkJob | None = None
    snapshots: list[dict[str, Any]] = []
    try:
        argv = [PYTHON, "manage.py", "composio_emulator", "--port", str(EMULATOR_PORT)]
        if args.emulator_latency > 0:
            argv += ["--latency", str(args.emulator_latency)]
        processes.start("emulator", argv)
        wait_for(f"{EMULATOR_URL}/_emulator/health", "the emulator", processes, "emulator")

        sync = toolkit_catalog.toolkit_catalog_sync(actor=admin)
        bulk_pks = random_end_user_pks(args.bulk, rng) if args.bulk > 0 else []
        slugs: set[str] = set()
        for toolkits in EndUser.objects.filter(pk__in=bulk_pks).values_list(
            "sessions__toolkits", flat=True
        ):
            slugs.update(toolkits or [])
        Toolkit.objects.filter(slug__in=slugs).update(is_allowed=True)
        print(f"catalog: {sync.total} toolkits; allowed for the job: {sorted(slugs)}")
        urllib.request.urlopen(  # noqa: S310 (loopback): count only the job's requests from here
            urllib.request.Request(f"{EMULATOR_URL}/_emulator/reset", method="POST"), timeout=5
        ).close()

        web_env = {"GUNICORN_BIND": f"127.0.0.1:{WEB_PORT}"}
        if args.gunicorn_workers:
            web_env["GUNICORN_WORKERS"] = str(args.gunicorn_workers)
        processes.start(
            "gunicorn",
            [PYTHON, "-m", "gunicorn", "console.wsgi", "-c", "gunicorn.conf.py"],
            web_env,
        )
        wait_for(f"{WEB_URL}/healthz", "gunicorn", processes, "gunicorn")
        for n in range(args.db_workers):
            name = "db_worker" if n == 0 else f"db_worker-{n + 1}"
            processes.start(name, [PYTHON, "manage.py", "db_worker", "--interval", "0.5"])

        if bulk_pks:
            job = bulk.bulk_job_start(
                kind=BulkJob.Kind.REFRESH,
                end_users=EndUser.objects.filter(pk__in=bulk_pks),
                toolkits=None,
                actor=admin,
            )
            print(
                f"bulk job: refresh {job.total} end users, budget {job.rate_per_minute} "
                f"requests/min ({progress.requests_per_item(job.kind)} per item), "
                f"{job.concurrency} slots"
            )

        if args.knee:
            knee(args, processes, accounts, logs, job)
            if job is not None and not BulkJob.objects.get(pk=job.pk).ended:
                bulk.bulk_job_cancel(job=job, actor=admin)
            return
        samples_path = logs / "samples.jsonl"
        snapshots += run_locust(args, processes, accounts, samples_path, args.users)
        snapshots.append(cpu_snapshot(processes))
        emulator_log = _get_json(f"{EMULATOR_URL}/_emulator/requests", timeout=30)
        (logs / "emulator-requests.json").write_text(json.dumps(emulator_log))
        if job is not None:
            job.refresh_from_db()
            if not job.ended:
                bulk.bulk_job_cancel(job=job, actor=admin)
    finally:
        print("stopping: " + ", ".join(f"{n} ({p.pid})" for n, p in reversed(processes.started)))
        processes.stop_all()

    report(args, logs, samples_path, job, snapshots, emulator_log, total_end_users)


def run_locust(
    args: argparse.Namespace,
    processes: Processes,
    accounts: list[list[str]],
    samples_path: Path,
    users: int,
) -> list[dict[str, Any]]:
    """One locust run of `users` support users: they log in, then `--duration` measured seconds.
    Returns the CPU snapshots taken while it ran."""
    iterations = max(1, args.max_requests // (users * 3))
    locust_env = {
        "LOAD_ACCOUNTS": json.dumps(accounts[:users]),
        "LOAD_TARGETS": str(processes.logs / "targets.tsv"),
        "LOAD_SAMPLES": str(samples_path),
        "LOAD_DURATION": str(args.duration),
        "LOAD_MAX_ITERATIONS": str(iterations),
        "LOAD_THINK_MIN": str(args.think_min),
        "LOAD_THINK_MAX": str(args.think_max),
        "LOAD_REVEAL_EVERY": str(args.reveal_every),
    }
    # A hard stop in case the users never all log in: ramp-up, the window, and slack.
    hard_stop = int(users / args.spawn_rate + args.duration + 120)
    locust_argv = [
        PYTHON, "-m", "locust", "-f", str(BENCH / "locustfile.py"), "--headless",
        "--users", str(users), "--spawn-rate", str(args.spawn_rate),
        "--run-time", f"{hard_stop}s", "--host", WEB_URL, "--only-summary",
        "--stop-timeout", "10", "--loglevel", "WARNING", "--exit-code-on-error", "0",
    ]  # fmt: skip
    print(
        f"load: {users} support users, think {args.think_min}-{args.think_max} s, "
        f"1 in {args.reveal_every} reveals, {args.duration:.0f} s measured after the last "
        f"login, against {WEB_URL}",
        flush=True,
    )
    snapshots = [cpu_snapshot(processes)]
    started_at = time.time()
    name = f"locust-{users}"
    locust = processes.start(name, locust_argv, locust_env)
    while locust.poll() is None:
        time.sleep(2)
        snapshots.append(cpu_snapshot(processes))
        if time.time() - started_at > hard_stop + 300:
            print("locust overran its hard stop; stopping it")
            break
    snapshots.append(cpu_snapshot(processes))
    return snapshots


def knee(
    args: argparse.Namespace,
    processes: Processes,
    accounts: list[list[str]],
    logs: Path,
    job: BulkJob | None,
) -> None:
    """Raise the load step by step (the bulk job running) and print the knee."""
    print(
        f"\nknee: steps of {args.knee} support users, {args.duration:.0f} s each; target: lookup "
        f"and card p95 < {TARGET_P95_MS:.0f} ms with 0 errors\n",
        flush=True,
    )
    header = (
        f"{'users':>5} {'req/s':>6} {'lookup p95':>10} {'card p95':>9} {'errors':>6} "
        f"{'load avg':>8} {'bulk':>9}  verdict"
    )
    rows = [header, "-" * len(header)]
    best: float | None = None
    # Unmeasured: the workers' first requests (imports, connections, caches) and the job's start.
    warm = argparse.Namespace(**{**vars(args), "duration": 15.0})
    print("warm-up (not measured):", flush=True)
    run_locust(warm, processes, accounts, logs / "samples-warm-up.jsonl", args.knee[0])
    for users in args.knee:
        samples_path = logs / f"samples-{users}.jsonl"
        snapshots = run_locust(args, processes, accounts, samples_path, users)
        lines = [json.loads(line) for line in samples_path.read_text().splitlines()]
        meta, samples = lines[0], lines[1:]
        if meta["steady_at"] is None:
            rows.append(f"{users:>5} only {meta['logged_in']} logged in: stopped here")
            break
        steady = meta["steady_at"]
        window = in_window(samples, steady, args.duration)
        rate = sum(1 for s in window if s["kind"] in KINDS) / args.duration
        p95 = {k: pct([s["ms"] for s in window if s["kind"] == k] or [0.0], 95) for k in KINDS}
        errors = sum(1 for s in samples if not s["ok"])
        ok = errors == 0 and max(p95["lookup"], p95["card"]) < TARGET_P95_MS
        bulk_state = "-"
        if job is not None:
            job.refresh_from_db()
            bulk_state = job.state
        rows.append(
            f"{users:>5} {rate:>6.1f} {p95['lookup']:>8.1f}ms {p95['card']:>7.1f}ms {errors:>6} "
            f"{os.getloadavg()[0]:>8.1f} {bulk_state:>9}  {'under' if ok else 'OVER'}"
        )
        print(rows[-1], flush=True)
        if len(snapshots) >= 2:
            shares = cpu_between(
                _nearest(snapshots, steady), _nearest(snapshots, steady + args.duration)
            )
            cpu = ", ".join(f"{name} {used:.2f}" for name, used in shares.items() if used >= 0.01)
            print(f"        cores busy: {cpu}", flush=True)
        if ok:
            best = max(best or 0.0, rate)
    print("\n" + "\n".join(rows))
    if best is None:
        print(f"\nknee: no step stayed under {TARGET_P95_MS:.0f} ms with 0 errors")
    else:
        print(
            f"\nknee: {best:.1f} staff requests/s with lookup and card p95 < "
            f"{TARGET_P95_MS:.0f} ms and 0 errors (bulk job running)"
        )
    print(machine())
    if job is not None and job.ended:
        print("note: the bulk job ended during the run; later steps ran without it (raise --bulk)")
    print(f"logs and raw samples: {logs}")


def report(
    args: argparse.Namespace,
    logs: Path,
    samples_path: Path,
    job: BulkJob | None,
    snapshots: list[dict[str, Any]],
    emulator_log: dict[str, Any],
    total_end_users: int,
) -> None:
    lines = [json.loads(line) for line in samples_path.read_text().splitlines()]
    meta, samples = lines[0], lines[1:]
    steady = meta["steady_at"]
    if steady is None:
        sys.exit(f"Only {meta['logged_in']} of {args.users} users logged in; see {logs}")
    end = steady + args.duration
    window = in_window(samples, steady, args.duration)
    ramp = [s for s in samples if s["end"] - s["ms"] / 1000 < steady]
    seconds = max(1e-6, min(end, max(s["end"] for s in samples)) - steady)
    all_kinds = ("login page", "login", "lookup page", *KINDS)

    print(
        f"\n{total_end_users} end users, {args.users} support users; measured window "
        f"{seconds:.0f} s after the last login ({len(ramp)} requests during the ramp-up)\n"
    )
    print("\n".join(latency_table(window, KINDS, seconds)))
    print(f"\nramp-up (logins, {len(ramp)} requests, {steady - samples[0]['end']:.1f} s):")
    print("\n".join(latency_table(ramp, all_kinds, max(1e-6, steady - samples[0]["end"]))))

    server = in_window(server_samples(logs / "gunicorn.log"), steady, args.duration)
    print("\nthe same window inside Django (the console's request log: no queueing, no network):")
    print("\n".join(latency_table(server, KINDS, seconds)))

    errors = [s for s in samples if not s["ok"]]
    print(
        f"\nerrors: {len(errors)} of {len(samples)} requests "
        f"({100 * len(errors) / max(1, len(samples)):.2f}%)"
    )
    for error in sorted({f"{s['kind']}: {s['error']}" for s in errors})[:10]:
        print(f"  {error}")

    verdict = []
    for kind in ("lookup", "card"):
        ms = [s["ms"] for s in window if s["kind"] == kind]
        if ms:
            ok = pct(ms, 95) < TARGET_P95_MS
            verdict.append(f"{kind} p95 {pct(ms, 95):.1f} ms {'<' if ok else '>='} 50 ms")
    verdict.append(f"{len(errors)} errors")

    if job is not None:
        job.refresh_from_db()
        counts = progress.item_counts(job)
        offset = time.time() - time.monotonic()
        times = [r["at"] + offset for r in emulator_log["requests"]]
        sent = [t for t in times if steady <= t <= end]
        per_minute = job.rate_per_minute
        capacity = rate_limit.burst()
        check = budget_check(times, per_minute, capacity)
        done_in_window = BulkJobItem.objects.filter(
            job=job,
            finished_at__gte=datetime.fromtimestamp(steady, UTC),
            finished_at__lte=datetime.fromtimestamp(end, UTC),
        ).count()
        within = check["excess"] <= job.concurrency
        # A job that keeps its budget by not working is no better: the longest quiet spell.
        finished = sorted(
            f.timestamp()
            for f in BulkJobItem.objects.filter(
                job=job, state=BulkJobItem.State.SUCCEEDED, finished_at__isnull=False
            ).values_list("finished_at", flat=True)
        )
        last = end
        if job.state == BulkJob.State.FINISHED and finished:
            last = min(end, finished[-1])  # all done: no spell after the last item
        marks = [job.created_at.timestamp(), *[f for f in finished if f <= last], last]
        quiet = max(later - earlier for earlier, later in zip(marks, marks[1:], strict=False))
        stalled = quiet > 10
        print(f"\nbulk job {job.public_id}: {job.state}; items {counts}")
        print(f"  emulator requests: {emulator_log['counts']}")
        print(
            f"  during the window: {done_in_window} items ({60 * done_in_window / seconds:.0f}"
            f"/min), {len(sent)} requests to Composio ({60 * len(sent) / seconds:.0f}"
            f"/min); budget {per_minute}/min, burst {capacity:.0f}"
        )
        when = f", {check['excess_at'] - steady:+.1f} s from the window's start" if times else ""
        print(
            f"  busiest 60 s: {check['peak60']:.0f} requests; busiest 10 s: "
            f"{check['peak10']:.0f}/min; most ahead of the token bucket: {check['excess']:.1f} "
            f"requests{when} "
            f"(tolerance: {job.concurrency}, the items in flight) -> "
            f"{'within' if within else 'OVER'} budget"
        )
        print(
            f"  longest spell without a finished item (job start to window end): {quiet:.1f} s"
            + (" -> STALLED" if stalled else "")
        )
        verdict.append(f"bulk {'within' if within else 'OVER'} its rate budget")
        if stalled:
            verdict.append(f"bulk STALLED ({quiet:.0f} s without a finished item)")

    if len(snapshots) >= 2:
        first, last = _nearest(snapshots, steady), _nearest(snapshots, end)
        if last["at"] - first["at"] < 4:
            first, last = snapshots[0], snapshots[-1]
        shares = cpu_between(first, last)
        print(
            f"\nCPU during the window (cores busy, of {psutil.cpu_count()}; "
            f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}):"
        )
        for name, used in sorted(shares.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<32} {used:5.2f}")

    print("\nverdict: " + "; ".join(verdict))
    print(f"logs and raw samples: {logs}")


if __name__ == "__main__":
    main()
