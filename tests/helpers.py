"""Helpers several test modules share that make no objects: reconcile runs, forced failures, URLs,
the emulator's wire calls, tampering with the audit chain, coalesced refusals and threads raced
on PostgreSQL. The bad-input suites' inputs and table watch are in tests/bad_input.py.

Kept out of the test modules so that no test module imports another.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import io
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any
from unittest import mock

import httpx
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.management import CommandError, ManagementUtility, call_command
from django.db import connection, connections
from django.db.backends.utils import CursorWrapper
from django.db.models import Max
from django.urls import reverse

from sessions_app import access, refusals
from sessions_app.bulk import progress
from sessions_app.models import AuditEvent, BulkJob, ToolRouterSession

_SESSION_TABLE = ToolRouterSession._meta.db_table


@contextmanager
def refuse_session_inserts() -> Iterator[None]:
    """A real database error on storing a session: a trigger refuses every insert meanwhile."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE OR REPLACE FUNCTION trc_test_refuse_insert() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'forced failure: storing sessions is refused'; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER trc_test_refuse_insert BEFORE INSERT ON {_SESSION_TABLE} "
                "FOR EACH ROW EXECUTE FUNCTION trc_test_refuse_insert()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER trc_test_refuse_insert BEFORE INSERT ON {_SESSION_TABLE} "
                "BEGIN SELECT RAISE(ABORT, 'forced failure: storing sessions is refused'); END"
            )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"DROP TRIGGER trc_test_refuse_insert ON {_SESSION_TABLE}")
                cursor.execute("DROP FUNCTION trc_test_refuse_insert()")
            else:
                cursor.execute("DROP TRIGGER trc_test_refuse_insert")


def run_command(name: str, *args: str) -> tuple[int, str]:
    """Run a management command in-process; (exit code, its output and its error's message)."""
    out = io.StringIO()
    try:
        call_command(name, *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def run_reconcile(*args: str) -> tuple[int, str]:
    """Run the command as a scheduler would (no grace, no settle time); (exit code, output)."""
    return run_command("reconcile_sessions", "--grace-seconds=0", "--settle-seconds=0", *args)


def messages_of(response: Any) -> list[str]:
    """The texts of the messages a page shows (Django's messages framework)."""
    return [str(m) for m in response.context["messages"]]


def csv_rows(response: Any) -> list[list[str]]:
    """The rows of a streamed CSV response, its header row first."""
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def audit_events(action: str) -> list[AuditEvent]:
    """The audit events of this action, oldest first."""
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def last_sequence() -> int:
    """The sequence number of the newest audit event (0 with none)."""
    return AuditEvent.objects.aggregate(top=Max("sequence"))["top"] or 0


def item_states(job: BulkJob) -> dict[str, int]:
    """How many of the job's items are in each state, leaving out the states no item is in."""
    return {k: v for k, v in progress.item_counts(job).items() if v}


# --- The audit chain (tests/test_trail.py, tests/chain/) ---------------------------------------

AUDIT_TABLE = AuditEvent._meta.db_table
_CHAIN_MIGRATION = importlib.import_module("sessions_app.migrations.0004_audit_chain")


def _audit_trigger_sql(*, on: bool) -> list[str]:
    """The statements that restore (`on`) or drop/disable the audit table's triggers."""
    if connection.vendor == "sqlite":
        return _CHAIN_MIGRATION.SQLITE_TRIGGERS if on else _CHAIN_MIGRATION.SQLITE_DROP
    return [f"ALTER TABLE {AUDIT_TABLE} {'ENABLE' if on else 'DISABLE'} TRIGGER USER"]


@contextmanager
def tampering() -> Iterator[CursorWrapper]:
    """A cursor with the append-only triggers off: what the database owner could do."""
    with connection.cursor() as cursor:
        for sql in _audit_trigger_sql(on=False):
            cursor.execute(sql)
        try:
            yield cursor
        finally:
            for sql in _audit_trigger_sql(on=True):
                cursor.execute(sql)


def rehash(cursor: Any, events: list[AuditEvent], make_hash: Any, key_id: str) -> None:
    """Rewrite the links of `events` (in order) with `make_hash(prev_hash, event)`."""
    prev = AuditEvent.objects.get(pk=events[0].pk).prev_hash
    for event in events:
        stored = AuditEvent.objects.get(pk=event.pk)
        stored.key_id = key_id
        row_hash = make_hash(prev, stored)
        cursor.execute(
            f"UPDATE {AUDIT_TABLE} SET prev_hash = %s, row_hash = %s, key_id = %s WHERE id = %s",
            [prev, row_hash, key_id, event.pk],
        )
        prev = row_hash


def verify_audit() -> str:
    """What `verify_audit` prints; it raises CommandError on a broken chain."""
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def assert_chain_intact() -> None:
    """`verify_audit` finds the chain intact."""
    assert "Audit chain intact" in verify_audit()


def exit_code(*argv: str) -> int:
    """Run a command as `manage.py` would, returning its exit status."""
    try:
        ManagementUtility(["manage.py", *argv]).execute()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


# --- The emulator over raw HTTP (tests/composio/test_emulator_*.py) ----------------------------

SESSION_URL = "/api/v3.1/tool_router/session"
TOOLKITS_URL = "/api/v3.1/toolkits"


def emulator_create(client: httpx.Client, **body: Any) -> dict[str, Any]:
    """Create a session at the emulator (user "u1" unless the body names one); its 201 answer."""
    body.setdefault("user_id", "u1")
    response = client.post(SESSION_URL, json=body)
    assert response.status_code == HTTPStatus.CREATED, response.text
    return response.json()


def assert_emulator_error(response: httpx.Response, status: int, slug: str | None = None) -> dict:
    """The error of an emulator answer, once it is this status in Composio's error envelope."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status
    assert {"message", "code", "slug", "request_id"} <= set(error)
    assert error["request_id"] == response.headers["x-request-id"]
    if slug is not None:
        assert error["slug"] == slug
    return error


# --- Coalesced refusals (sessions_app.refusals) -------------------------------------------------


def refusals_at(moment: dt.datetime) -> mock._patch:
    """Make `moment` the time the refusals' windows go by (the trail and the rest keep the
    clock), so a test does not depend on where in a minute it runs."""
    return mock.patch("sessions_app.refusals.timezone", SimpleNamespace(now=lambda: moment))


def refuse(user: User, operation: str = "probe", *, times: int = 1) -> None:
    """Refuse `user` the `operation` (reason "<operation> needs x.") `times` times over."""
    for _ in range(times):
        access.refuse(operation=operation, reason=f"{operation} needs x.", actor=user)


def fresh_refusal_windows() -> int:
    """Close every open window of coalesced refusals, as the end of its minute would, so that the
    next refusal of any user is written to the audit trail at once rather than only counted in
    its window (`sessions_app.refusals`). Returns the newest event's sequence after the closing
    summaries: the mark to read the next refusal's event from."""
    refusals.close_windows()
    return last_sequence()


def refusals_counted() -> Counter[tuple[str, str]]:
    """The refusals the audit trail counts, per (staff username, operation): each
    `access.refused` event stands for its details' count (more than one for the summary of a
    window of coalesced refusals; refusals still in an open window are not counted yet)."""
    totals: Counter[tuple[str, str]] = Counter()
    for event in AuditEvent.objects.filter(action="access.refused"):
        totals[(event.actor_username, event.details["operation"])] += event.details["count"]
    return totals


def reveal_url(session: ToolRouterSession) -> str:
    """The support page's POST endpoint that reveals this session's MCP URL."""
    return reverse("sessions_app:support_mcp_reveal", args=[session.public_id])


# Tests that race real threads on PostgreSQL (SQLite admits one writer at a time).
ON_POSTGRESQL = [
    pytest.mark.skipif(
        not django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="Row locks across threads need PostgreSQL; SQLite admits one writer at a time, "
        "so there is no race to test.",
    ),
    pytest.mark.postgres,
    # serialized_rollback: the flush after a transactional test would drop the role groups.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def run_together(*calls: Callable[[], object], timeout: float = 30) -> list[object]:
    """Run each call in its own thread, released at once by a barrier; results in call order."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def worker(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except BaseException as exc:  # noqa: BLE001 - reported by the caller's assertions
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    return results
