"""Benchmark: the first "Check connections" after the web server starts, cold vs warm.

    python bench/first_call.py [--runs 3] [--settle auto|SECONDS]

The first call to Composio in a web worker used to pay for `import composio` (seconds). Web
workers now import the SDK in a background thread right after they start (console/wsgi.py ->
`tool_router.health.warm_up_in_background`). This measures what that is worth, against the
bundled emulator, on a SQLite database of its own (var/bench_first_call.sqlite3):

1. starts the emulator (`manage.py composio_emulator`) on a free loopback port, syncs the catalog,
   and gives one end user a session through the session service;
2. for each run, twice: gunicorn with one worker (the production gunicorn.conf.py) serving
   - `cold`: the plain Django WSGI application (bench/cold_wsgi.py: no warm-up, the baseline),
   - `warm`: `console.wsgi`, which starts the warm-up;
   waits for /healthz, signs a Support user in, waits the settle time (by default as long as the
   warm worker's log took to say "composio warm-up done", the same wait for the cold run), then
   times the card's "Check connections" (its HTMX GET; the shared cache emptied before each
   run), the first call to Composio the worker makes;
3. prints each run's figures and the medians side by side, with the ratio cold/warm, against the
   target: under 300 ms warm.

Every process it starts is stopped in a `finally`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from processes import Processes, free_port  # bench/processes.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
EMULATOR_KEY = "bench-first-call-key"
TARGET_MS = 300.0


EMULATOR_PORT = free_port()
(ROOT / "var").mkdir(exist_ok=True)
LOGS = ROOT / "var" / "bench_first_call"
LOGS.mkdir(exist_ok=True)
PROCESSES = Processes(LOGS)
ENV = {
    "DATABASE_URL": f"sqlite:///{ROOT / 'var' / 'bench_first_call.sqlite3'}",
    # The console must talk to this emulator, never to a real Composio named in the environment.
    "COMPOSIO_API_KEY": "",
    "COMPOSIO_EMULATOR_URL": f"http://127.0.0.1:{EMULATOR_PORT}",
    "COMPOSIO_EMULATOR_API_KEY": EMULATOR_KEY,
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "PYTHONUNBUFFERED": "1",
}
os.environ.update(ENV)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402

from sessions_app import roles  # noqa: E402
from sessions_app.models import EndUser, Toolkit  # noqa: E402
from sessions_app.tool_router import sessions, toolkit_catalog  # noqa: E402

USERNAME, PASSWORD = "bench_first_call", "bench-first-call-pw-0123456789"


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="cold/warm pairs (default 3)")
    parser.add_argument(
        "--settle",
        default="auto",
        help="seconds between sign-in and the check; auto: until the warm worker is warm",
    )
    return parser.parse_args()


def _wait_for(url: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{url}: the server exited early; see {LOGS}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    sys.exit(f"{url} did not answer within {seconds:.0f} s")


def prepare() -> str:
    """The database, the catalog, a Support user and one end user with a session: the end
    user's card URL."""
    call_command("migrate", verbosity=0)
    toolkit_catalog.toolkit_catalog_sync(actor=None)
    Toolkit.objects.filter(slug="github").update(is_allowed=True)
    user, _ = User.objects.get_or_create(username=USERNAME, defaults={"is_staff": True})
    user.set_password(PASSWORD)
    user.save()
    user.groups.add(Group.objects.get(name=roles.SUPPORT))
    end_user, _ = EndUser.objects.get_or_create(external_id="usr_bench_first_call")
    if not end_user.sessions.filter(status="active").exists():
        result = sessions.tool_router_session_create(
            end_user=end_user, toolkits=["github"], actor=None
        )
        assert result.ok, result.message
    return f"/support/users/{end_user.public_id}/"


def one_run(kind: str, card: str, settle: float | None) -> tuple[float, float, float]:
    """Start gunicorn serving `kind`, sign in, wait `settle` seconds (None: until the warm
    worker says it is warm), time the first check: (ms, seconds the server took to answer
    /healthz, seconds waited before the check)."""
    cache.clear()  # no connection status left from an earlier run
    port = free_port()
    app = "console.wsgi:application" if kind == "warm" else "cold_wsgi:application"
    argv = [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--workers", "1"]
    argv += ["--bind", f"127.0.0.1:{port}", "--pythonpath", str(ROOT / "bench"), app]
    started = time.monotonic()
    proc = PROCESSES.start(f"gunicorn-{kind}", argv)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/healthz", proc)
        up = time.monotonic() - started
        with httpx.Client(base_url=base, timeout=120) as client:
            client.get("/accounts/login/")
            login = client.post(
                "/accounts/login/",
                data={
                    "login": USERNAME,  # the sign-in form is django-allauth's
                    "password": PASSWORD,
                    "csrfmiddlewaretoken": client.cookies["csrftoken"],
                },
            )
            assert login.status_code == 302, login.status_code
            page = client.get(card).text
            check = re.search(r'hx-get="([^"]+/connections/)"', page)
            assert check, "no Check connections button on the card"
            if settle is None:
                t = time.monotonic()
                _until_warm()
                waited = time.monotonic() - t
            else:
                time.sleep(settle)
                waited = settle
            t = time.perf_counter()
            response = client.get(check.group(1), headers={"HX-Request": "true"})
            ms = 1000 * (time.perf_counter() - t)
            assert response.status_code == 200, response.status_code
            assert "connection" in response.text.lower(), response.text[:200]
        return ms, up, waited
    finally:
        PROCESSES.stop(proc)


def _until_warm(seconds: float = 180) -> None:
    """Wait until the warm worker's log says its warm-up is done."""
    log = LOGS / "gunicorn-warm.log"
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if "composio warm-up done" in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    sys.exit(f"the warm-up did not finish in {seconds:.0f} s; see {log}")


def main() -> None:
    args = _parse()
    settle = None if args.settle == "auto" else float(args.settle)
    emulator = PROCESSES.start(
        "emulator",
        [PYTHON, "manage.py", "composio_emulator", "--port", str(EMULATOR_PORT)],
        env={"COMPOSIO_EMULATOR_API_KEY": EMULATOR_KEY},
    )
    rows: list[tuple[int, float, float, float, float]] = []
    try:
        _wait_for_port(EMULATOR_PORT, emulator)
        card = prepare()
        for run in range(1, args.runs + 1):
            # Warm first: its wait (sign-in to "warm-up done") is the cold run's wait too, so the
            # two differ only in whether the worker imported the SDK before the check.
            warm_ms, _, warm_waited = one_run("warm", card, settle)
            cold_ms, cold_up, waited = one_run("cold", card, warm_waited)
            rows.append((run, cold_ms, warm_ms, cold_up, waited))
            print(
                f"run {run}: cold {cold_ms:8.1f} ms   warm {warm_ms:8.1f} ms   "
                f"(server up in {cold_up:.1f} s; check {waited:.1f} s after sign-in)",
                flush=True,
            )
    finally:
        PROCESSES.stop(emulator)
    cold = statistics.median(r[1] for r in rows)
    warm = statistics.median(r[2] for r in rows)
    print()
    print(f"{'first Check connections':32} {'cold (no warm-up)':>18} {'warm':>10}")
    print(f"{'median of ' + str(len(rows)) + ' runs':32} {cold:15.1f} ms {warm:7.1f} ms")
    print(
        f"cold/warm: {cold / warm:.1f}x; target < {TARGET_MS:.0f} ms warm: "
        f"{'met' if warm < TARGET_MS else 'NOT met'}"
    )


def _wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the emulator exited early; see {LOGS / 'emulator.log'}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    sys.exit("the emulator did not listen in time")


if __name__ == "__main__":
    main()
