"""Helpers several test modules share that make no objects: reconcile runs, forced failures, URLs.

Kept out of the test modules so that no test module imports another.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management import CommandError, call_command
from django.db import connection

from sessions_app.models import ToolRouterSession

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


def access_placeholders(access_world: dict[str, Any]) -> dict[str, Any]:
    """The object ids the access matrix's URLs name, read fresh for each request.

    Fresh each time: a refresh earlier in a walk replaces the active session.
    """
    session = access_world["end_user"].sessions.get(status=ToolRouterSession.Status.ACTIVE)
    return {
        **access_world["ids"],
        "toolroutersession": session.pk,
        "session_uuid": session.public_id,
    }
