"""`audit_grants` (`sessions_app.chain.grants`): on PostgreSQL the app's role may only insert and
select audit events; the table belongs to another role.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from tests.factories import record_events
from tests.helpers import AUDIT_TABLE, verify_audit

pytestmark = pytest.mark.django_db


def test_audit_grants_needs_postgresql() -> None:
    if connection.vendor == "postgresql":
        pytest.skip("SQLite only")
    with pytest.raises(CommandError, match="PostgreSQL"):
        call_command("audit_grants", app_role="app", owner_role="owner")


def test_audit_grants_refuses_a_role_name_that_is_not_plain() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    with pytest.raises(CommandError, match="not a plain"):
        call_command("audit_grants", app_role='app"; DROP TABLE x; --', owner_role="owner")


def test_the_app_role_may_only_insert_and_select_audit_events(keyed: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has no roles")
    record_events(2)
    with connection.cursor() as cursor:
        # Inside the test's transaction: the roles and the ownership change roll back with it.
        cursor.execute("CREATE ROLE trc_test_app NOLOGIN")
        cursor.execute("CREATE ROLE trc_test_owner NOLOGIN")
        cursor.execute("GRANT USAGE ON SCHEMA public TO trc_test_app, trc_test_owner")
    out = io.StringIO()
    call_command(
        "audit_grants", app_role="trc_test_app", owner_role="trc_test_owner", apply=True, stdout=out
    )
    printed = out.getvalue()
    assert f'GRANT SELECT, INSERT ON "{AUDIT_TABLE}" TO "trc_test_app";' in printed
    assert f'ALTER TABLE "{AUDIT_TABLE}" OWNER TO "trc_test_owner";' in printed
    with connection.cursor() as cursor:
        cursor.execute("SET ROLE trc_test_app")
        try:
            (event,) = record_events(1, start=3)  # INSERT and SELECT work
            assert event.sequence == 3
            refused = [
                f"UPDATE {AUDIT_TABLE} SET reason = 'x'",
                f"DELETE FROM {AUDIT_TABLE}",
                f"TRUNCATE {AUDIT_TABLE}",
                f"ALTER TABLE {AUDIT_TABLE} DISABLE TRIGGER USER",
                f"DROP TABLE {AUDIT_TABLE}",
            ]
            for sql in refused:
                with (
                    pytest.raises(DatabaseError, match="permission denied|must be owner"),
                    transaction.atomic(),
                ):
                    cursor.execute(sql)
        finally:
            cursor.execute("RESET ROLE")
    assert verify_audit().startswith("Audit chain intact: 3 events")
