"""Speed of the access report and the filtered audit log at 100k sessions and 1M events.

    createdb -h 127.0.0.1 -U postgres trc_bench_audit   # once
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/trc_bench_audit .venv/bin/python bench/audit.py

Seeds once (skipped when the data is there; --reseed drops and recreates the database), then
times each page through Django's test Client and prints p50/p95 server time.
Targets: report < 200 ms p95, a page of the filtered log < 50 ms p95.
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
from django.test import Client  # noqa: E402

from sessions_app import roles, trail  # noqa: E402
from sessions_app.chain import hashing  # noqa: E402
from sessions_app.models import AuditEvent, EndUser, ToolRouterSession  # noqa: E402

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
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


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


def seed() -> None:
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
        start = T0 + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 300))
        switch = start + dt.timedelta(minutes=rng.randrange(60, 60 * 24 * 60))
        for status, created, superseded in (
            ("superseded", start, switch),
            ("active", switch, None),
        ):
            sid += 1
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

    print("seeding 1M chained audit events ...", flush=True)
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
    step = dt.timedelta(seconds=300 * 24 * 3600 / EVENTS)
    batch = []
    for n in range(1, EVENTS + 1):
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
    args = parser.parse_args()
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("bench/audit.py needs PostgreSQL: set DATABASE_URL")
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
        seed()
    settings.ALLOWED_HOSTS = ["*"]
    auditor, _ = User.objects.get_or_create(username="bench_auditor")
    auditor.groups.add(Group.objects.get(name=roles.AUDITOR))
    client = Client()
    client.force_login(auditor)
    print(f"{ToolRouterSession.objects.count()} sessions, {AuditEvent.objects.count()} events")
    pages = [
        ("access report", "/audit/access/", 200),
        ("access report, point in time", "/audit/access/?toolkit=toolkit007&on=2025-06-01", 200),
        (
            "access report, granted range",
            "/audit/access/?granted_from=2025-03-01&granted_to=2025-03-31",
            200,
        ),
        ("toolkit drill-down", "/audit/access/toolkits/toolkit007/", 200),
        ("users view", "/audit/access/users/?page=50", 200),
        ("log, newest page", "/audit/events/", 50),
        ("log, action+outcome", "/audit/events/?action=session.refresh&outcome=failure", 50),
        ("log, end user", "/audit/events/?end_user=user001234", 50),
        ("log, date range", "/audit/events/?date_from=2025-05-01&date_to=2025-05-31", 50),
        (
            "log, action+date range",
            "/audit/events/?action=mcp_url.reveal&date_from=2025-05-01&date_to=2025-05-31",
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
