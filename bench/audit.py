"""Speed of the access report and the filtered audit log at 100k sessions and 1M events.

    createdb -h 127.0.0.1 -U postgres trc_bench_audit   # once
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/trc_bench_audit .venv/bin/python bench/audit.py

Seeds once (skipped when the data is there; --reseed drops and recreates the database), then
times each page through Django's test Client and prints p50/p95 server time.
Targets: every access report variant < 100 ms p95 (the default 30-day window, a one-month and a
365-day granted range, a point in time: the data spans the last 330 days, so each has rows), a
page of the filtered log < 50 ms p95. The chart reads the daily rollup, which the seed rebuilds
(`rollups.rebuild`, timed) since it writes rows without the services.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trc_bench_audit")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Min  # noqa: E402
from django.test import Client  # noqa: E402
from figures import machine  # noqa: E402  (bench/figures.py, beside this script)

from sessions_app import roles, trail  # noqa: E402
from sessions_app.chain import hashing  # noqa: E402
from sessions_app.models import (  # noqa: E402
    AuditEvent,
    EndUser,
    ToolkitDailyRollup,
    ToolRouterSession,
)
from sessions_app.tool_router import rollups  # noqa: E402

SESSIONS = 100_000
EVENTS = 1_000_000
TOOLKITS = 200
ACTIONS = [
    "session.create",
    "session.refresh",
    "mcp_url.reveal",
    "auth.login",
    "catalog.sync",
    "access.refused",
    "session.delete",
    "toolkit.allow",
]
# The data spans the 330 days before the day it is seeded, so the report's default window (the last
# 30 days), a one-month range, a 365-day range and a past day all have sessions to count.
SPAN_DAYS = 330
T0 = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(
    days=SPAN_DAYS
)


def _copy(table: str, columns: list[str], rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buffer.seek(0)
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        copy.write(buffer.getvalue())


def seed(events: int = EVENTS) -> None:
    rng = random.Random(5)
    print("seeding toolkits, users, sessions ...", flush=True)
    with connection.cursor() as cursor:
        now = T0.isoformat()
        for i in range(TOOLKITS):
            cursor.execute(
                "INSERT INTO sessions_app_toolkit (slug, name, auth_schemes, no_auth, categories,"
                " description, is_allowed, in_catalog, created_at) VALUES"
                " (%s, %s, '[]', false, '[]', '', %s, %s, %s)",
                [f"toolkit{i:03d}", f"Toolkit {i}", i % 10 != 3, i % 25 != 7, now],
            )
    toolkit_ids = list(
        __import__("sessions_app.models", fromlist=["Toolkit"])
        .Toolkit.objects.order_by("slug")
        .values_list("pk", flat=True)
    )
    admin = User.objects.create_user("bench_admin", password=None)
    n_users = SESSIONS // 2
    _copy(
        "sessions_app_enduser",
        ["public_id", "external_id", "display_name", "email", "created_at", "updated_at"],
        (
            (__import__("uuid").uuid4(), f"user{u:06d}", "", "", T0.isoformat(), T0.isoformat())
            for u in range(n_users)
        ),
    )
    user_ids = list(EndUser.objects.order_by("pk").values_list("pk", flat=True))
    # Two sessions per user: an old superseded one, and the active one replacing it.
    session_rows, link_rows = [], []
    sid = 0
    for uid in user_ids:
        start = T0 + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * (SPAN_DAYS - 60)))
        switch = start + dt.timedelta(minutes=rng.randrange(60, 60 * 24 * 60))
        for status, created, superseded in (
            ("superseded", start, switch),
            ("active", switch, None),
        ):
            sid += 1
            # Some sessions had their Composio config history read, a few with a version no
            # audit event explains (the report's "changed outside the console" finding).
            checked = created + dt.timedelta(hours=1) if sid % 50 == 0 else None
            unexplained = (
                [{"version": 2, "created_at": checked.isoformat(), "toolkits": ["toolkit001"]}]
                if sid % 500 == 0
                else []
            )
            session_rows.append(
                (
                    sid,
                    __import__("uuid").uuid4(),
                    uid,
                    f"trs_{sid:07d}",
                    f"https://mcp.example.test/tool_router/trs_{sid:07d}/mcp",
                    "http",
                    "[]",
                    status,
                    admin.pk,
                    (sid - 1) if status == "active" else None,
                    created.isoformat(),
                    superseded.isoformat() if superseded else None,
                    "",
                    checked.isoformat() if checked else None,
                    json.dumps(unexplained),
                )
            )
            for tk in rng.sample(toolkit_ids, rng.randint(1, 4)):
                link_rows.append((sid, tk))
    _copy(
        "sessions_app_toolroutersession",
        [
            "id",
            "public_id",
            "end_user_id",
            "session_id",
            "mcp_url",
            "mcp_type",
            "toolkits",
            "status",
            "created_by_id",
            "replaces_id",
            "created_at",
            "superseded_at",
            "remote_delete_error",
            "config_checked_at",
            "config_unexplained",
        ],
        session_rows,
    )
    _copy("sessions_app_sessiontoolkit", ["session_id", "toolkit_id"], link_rows)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('sessions_app_toolroutersession', 'id'), %s)",
            [sid],
        )
    print(f"  {len(session_rows)} sessions, {len(link_rows)} toolkit links", flush=True)

    print(f"seeding {events} chained audit events ...", flush=True)
    columns = [
        "created_at",
        "actor_id",
        "actor_username",
        "ip_address",
        "request_id",
        "action",
        "outcome",
        "end_user_id",
        "end_user_external_id",
        "session_id",
        "session_ref",
        "reason",
        "details",
        "toolkit_slugs",
        "sequence",
        "prev_hash",
        "row_hash",
        "key_id",
    ]
    key_id = trail.keyring().current_id
    prev = trail.GENESIS_HASH
    step = dt.timedelta(seconds=SPAN_DAYS * 24 * 3600 / events)
    batch = []
    for n in range(1, events + 1):
        uid = rng.choice(user_ids)
        slug = f"toolkit{rng.randrange(TOOLKITS):03d}"
        event = AuditEvent(
            created_at=T0 + step * n,
            actor_id=admin.pk,
            actor_username="bench_admin",
            ip_address="10.0.0.1",
            request_id=f"{n:032x}",
            action=rng.choice(ACTIONS),
            outcome=rng.choice(["success"] * 8 + ["failure", "refused"]),
            end_user_id=uid,
            end_user_external_id=f"user{uid - user_ids[0]:06d}",
            session_id=None,
            session_ref="",
            reason="",
            details={"toolkits": [slug]},
            toolkit_slugs=f" {slug} ",
            sequence=n,
            prev_hash=prev,
            key_id=key_id,
        )
        event.row_hash = trail.chain_hash(prev, event)
        prev = event.row_hash
        batch.append(
            [
                hashing.utc_iso(event.created_at),
                event.actor_id,
                event.actor_username,
                event.ip_address,
                event.request_id,
                event.action,
                event.outcome,
                event.end_user_id,
                event.end_user_external_id,
                None,
                "",
                "",
                json.dumps({"toolkits": [slug]}),
                event.toolkit_slugs,
                n,
                event.prev_hash,
                event.row_hash,
                key_id,
            ]
        )
        if len(batch) == 50_000:
            _copy("sessions_app_auditevent", columns, batch)
            batch = []
            print(f"  {n} events", flush=True)
    if batch:
        _copy("sessions_app_auditevent", columns, batch)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def rebuild_rollup() -> None:
    started = time.perf_counter()
    rows = rollups.rebuild()
    took = time.perf_counter() - started
    print(f"rebuild_rollups: {rows} rows in {took:.1f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sessions_app_toolkitdailyrollup")


def timed(client: Client, url: str, runs: int) -> tuple[float, float]:
    client.get(url)  # warm up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    import logging

    logging.getLogger("console.request").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument(
        "--events", type=int, default=EVENTS, help="audit events to seed (the log's pages)"
    )
    args = parser.parse_args()
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("bench/audit.py needs PostgreSQL: set DATABASE_URL")
    print(machine())
    if args.reseed:
        connection.close()
        for sql in (f"DROP DATABASE IF EXISTS {db['NAME']}", f"CREATE DATABASE {db['NAME']}"):
            subprocess.run(
                [
                    "psql",
                    "-h",
                    db["HOST"] or "127.0.0.1",
                    "-U",
                    db["USER"],
                    "-d",
                    "postgres",
                    "-c",
                    sql,
                ],
                check=True,
            )
    call_command("migrate", verbosity=0)
    if not AuditEvent.objects.exists():
        seed(args.events)
    if not ToolkitDailyRollup.objects.exists():
        rebuild_rollup()
    first = ToolRouterSession.objects.aggregate(first=Min("created_at"))["first"]
    t0 = first.replace(hour=0, minute=0, second=0, microsecond=0)
    if t0 < T0 - dt.timedelta(days=5):
        sys.exit(
            f"The data starts on {t0:%Y-%m-%d}, before the last {SPAN_DAYS} days: it was seeded "
            "long ago (or by an older version of this script). Run with --reseed."
        )

    def day(offset: int) -> str:
        return (t0 + dt.timedelta(days=offset)).date().isoformat()

    today = dt.datetime.now(dt.UTC).date()
    year_ago = (today - dt.timedelta(days=364)).isoformat()
    settings.ALLOWED_HOSTS = ["*"]
    auditor, _ = User.objects.get_or_create(username="bench_auditor")
    auditor.groups.add(Group.objects.get(name=roles.AUDITOR))
    client = Client()
    client.force_login(auditor)
    print(f"{ToolRouterSession.objects.count()} sessions, {AuditEvent.objects.count()} events")
    pages = [
        ("access report (default 30 days)", "/audit/access/", 100),
        ("access report, point in time", f"/audit/access/?toolkit=toolkit007&on={day(150)}", 100),
        (
            "access report, granted range (1 month)",
            f"/audit/access/?granted_from={day(60)}&granted_to={day(90)}",
            100,
        ),
        (
            "access report, granted range (365 d)",
            f"/audit/access/?granted_from={year_ago}&granted_to={today.isoformat()}",
            100,
        ),
        ("toolkit drill-down", "/audit/access/toolkits/toolkit007/", 100),
        ("users view", "/audit/access/users/?page=50", 100),
        ("log, newest page", "/audit/events/", 50),
        ("log, action+outcome", "/audit/events/?action=session.refresh&outcome=failure", 50),
        ("log, end user", "/audit/events/?end_user=user001234", 50),
        ("log, date range", f"/audit/events/?date_from={day(120)}&date_to={day(150)}", 50),
        (
            "log, action+date range",
            f"/audit/events/?action=mcp_url.reveal&date_from={day(120)}&date_to={day(150)}",
            50,
        ),
        ("log, toolkit", "/audit/events/?toolkit=toolkit042", 50),
    ]
    print(f"{'page':38} {'p50 ms':>8} {'p95 ms':>8} {'target':>8}")
    for name, url, target in pages:
        p50, p95 = timed(client, url, args.runs)
        verdict = "ok" if p95 < target else "SLOW"
        print(f"{name:38} {p50:8.1f} {p95:8.1f} {target:>6} {verdict}", flush=True)


if __name__ == "__main__":
    main()
