"""Helpers several test modules share that make no objects: reconcile runs, forced failures, URLs,
the emulator's wire calls, tampering with the audit chain, and the inputs and table watch of the
bad-input suites.

Kept out of the test modules so that no test module imports another.
"""

from __future__ import annotations

import csv
import importlib
import io
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.core.management import CommandError, ManagementUtility, call_command
from django.db import connection, connections
from django.db.backends.utils import CursorWrapper
from django.db.models import Max
from django.urls import reverse
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sessions_app import refusals
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


def run_reconcile(*args: str) -> tuple[int, str]:
    """Run the command as a scheduler would (no grace, no settle time); (exit code, output)."""
    out = io.StringIO()
    try:
        call_command(
            "reconcile_sessions", "--grace-seconds=0", "--settle-seconds=0", *args, stdout=out
        )
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


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


# --- The bad-input suites (tests/suites/test_bad_input_*.py) ------------------------------------
#
# Hypothesis sends random keys and values to every query parameter and form; every request must
# answer below 500 and leave every table as it was, but for the audit events the view is
# documented to write. `Watch` sees every table of every installed app, django-axes' and the task
# queue's included, but `django_session`: logging a test client in writes it (and so may the staff
# session clock), and it is not content the console owns.

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# The page-by-page walks (27 pages, 15 paths) take fewer examples each, to keep the suite short.
FUZZ_PER_VIEW = settings(FUZZ, max_examples=20)

# Unicode look-alikes of slugs and ids the world holds.
LOOKALIKES = [
    "gіthub",  # Cyrillic i
    "gmаil",  # Cyrillic a
    "usr_аccess",
    "ｇｉｔｈｕｂ",  # full width
    "github\u200b",  # zero-width space
    "GITHUB",
    " github",
    "git hub",
    "ǵithub",
]
# Edge values: numbers out of range, NULs and control characters, impossible dates, bad UUIDs,
# injections, and words the views read as keys.
SPECIAL = [
    "",
    " ",
    "0",
    "-1",
    "-99999999999999999999",
    "99999999999999999999999",
    "9223372036854775808",
    "1e309",
    "NaN",
    "inf",
    "None",
    "null",
    "true",
    "[]",
    "{}",
    "%00",
    "\x00",
    "a\x00b",
    "\r\n",
    "\x1b[31m",
    "2026-02-31",
    "2026-13-01",
    "0000-00-00",
    "0001-01-01",
    "0001-01-05",
    "9999-12-31",
    "10000-01-01",
    "2026-02-28T25:00",
    "00000000-0000-0000-0000-000000000000",
    "not-a-uuid",
    "123e4567-e89b-12d3-a456-42661417400",
    "123e4567-e89b-12d3-a456-4266141740000",
    "'; DROP TABLE sessions_app_enduser;--",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "csv",
    "toolkits",
    "point_in_time",
    "yes",
    "no",
    "on",
    "1",
    "-id",
    "0.-1",
    "created_at__gte",
]
CONTROL = st.text(alphabet=st.characters(categories=["Cc"]), min_size=1, max_size=8)
LONG = st.builds(
    lambda c, n: c * n, st.sampled_from(["a", "а", "\x00", "9", "é"]), st.integers(200, 3000)
)
# Any value a field or query parameter may be sent.
VALUES = st.one_of(
    st.sampled_from(SPECIAL + LOOKALIKES),
    st.text(max_size=40),
    CONTROL,
    LONG,
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.uuids().map(str),
    st.dates().map(str),
)


def query_strategy(known: Iterable[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Query strings of up to six pairs: known keys or random ones, each with a random value."""
    keys = st.one_of(st.sampled_from(sorted(known) or ["q"]), st.text(max_size=20))
    return st.lists(st.tuples(keys, VALUES), max_size=6)


WATCHED = [
    model
    for model in apps.get_models(include_auto_created=True)
    if model._meta.label_lower != "sessions.session"
]


def snapshot() -> dict[str, Counter]:
    """Every row of every watched table, as a multiset of its field values."""
    state: dict[str, Counter] = {}
    for model in WATCHED:
        names = [f.attname for f in model._meta.concrete_fields]
        rows = model._base_manager.order_by().values_list(*names)
        # repr: JSON fields come back as dicts and lists, which do not hash.
        state[model._meta.label_lower] = Counter(repr(row) for row in rows)
    return state


def last_sequence() -> int:
    """The sequence number of the newest audit event (0 with none)."""
    return AuditEvent.objects.aggregate(top=Max("sequence"))["top"] or 0


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


class Watch:
    """Before a request: every table. After: what changed, and the audit events written.

    The watch starts with no window of coalesced refusals open, so a refusal writes its event at
    once (and opens a window, the refusal table being part of the audit trail)."""

    def __init__(self) -> None:
        self.sequence = fresh_refusal_windows()
        self.before = snapshot()

    def events(self) -> list[tuple[str, str]]:
        """(action, outcome) of each audit event written since the watch began, oldest first."""
        return list(
            AuditEvent.objects.filter(sequence__gt=self.sequence)
            .order_by("sequence")
            .values_list("action", "outcome")
        )

    def changed_tables(self, *, allowed: Iterable[str] = ()) -> list[str]:
        """The tables that changed but the audit trail (read by `events`; with no window open at
        the start, no refusal can have been counted without an event) and `allowed`."""
        after = snapshot()
        skip = {"sessions_app.auditevent", "sessions_app.refusalwindow", *allowed}
        return sorted(k for k in self.before if k not in skip and self.before[k] != after[k])

    def assert_wrote(self, events: list[tuple[str, str]], *, allowed: Iterable[str] = ()) -> None:
        """Nothing changed but `allowed` tables, and exactly these audit events were written."""
        assert self.changed_tables(allowed=allowed) == []
        assert self.events() == events


def no_server_error(response: Any) -> Any:
    """The response, once it is known to answer below 500 (a streamed body read to its end)."""
    # Reading a streamed body (CSV exports) runs the code that writes it.
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)
    assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR, response.status_code
    return response


def harmless(send: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The response of `send(*args, **kwargs)` (a test client's `get` or `post`), once it is known
    to answer below 500, to have changed no table and to have written no audit event."""
    watch = Watch()
    response = no_server_error(send(*args, **kwargs))
    watch.assert_wrote([])
    return response


# The audit events a refused request and a rejected toolkit choice write.
REFUSED = [("access.refused", "refused")]
REJECTED = [("input.rejected", "rejected")]


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
