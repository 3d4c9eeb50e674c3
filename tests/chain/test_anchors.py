"""The audit chain is anchored outside the database (`anchor_audit`, `sessions_app.chain.anchors`):
verify_audit names a tail cut after an anchor and a suffix re-chained even with the key, and
refuses a garbled anchor file; migration 0009 anchors the events written before the key.

Tampering is done as a database operator would: raw SQL with the append-only triggers disabled.
"""

from __future__ import annotations

import importlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from sessions_app.chain import hashing
from sessions_app.chain.anchors import read_anchors
from sessions_app.models import AuditEvent
from tests.factories import record_events
from tests.helpers import AUDIT_TABLE, exit_code, rehash, tampering, verify_audit

keys_migration = importlib.import_module("sessions_app.migrations.0009_audit_keys")

pytestmark = pytest.mark.django_db


def _anchor() -> str:
    out = io.StringIO()
    call_command("anchor_audit", stdout=out)
    return out.getvalue()


def test_anchor_audit_appends_the_head_as_one_json_line(keyed: Any) -> None:
    assert _anchor() == "The audit log is empty: nothing to anchor.\n"
    path = Path(keyed.AUDIT_ANCHOR_PATH)
    assert not path.exists()
    first = record_events(2)[-1]
    assert _anchor().startswith(f"Anchored event #2:{first.row_hash} (key k1) in {path}")
    last = record_events(1, start=3)[-1]
    _anchor()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    anchor = json.loads(lines[1])
    assert anchor.keys() == {"sequence", "id", "row_hash", "key_id", "created_at", "anchored_at"}
    assert (anchor["sequence"], anchor["id"], anchor["row_hash"], anchor["key_id"]) == (
        3,
        last.pk,
        last.row_hash,
        "k1",
    )
    assert [a.sequence for a in read_anchors()] == [2, 3]
    assert verify_audit().endswith("Anchors matched: 2\n")


def test_the_anchor_file_is_opened_append_only(keyed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    record_events(1)
    flags_seen: list[int] = []
    real_open = os.open

    def spy(path: Any, flags: int, *args: Any) -> int:
        flags_seen.append(flags)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", spy)
    _anchor()
    assert flags_seen and all(flags & os.O_APPEND for flags in flags_seen)
    assert not any(flags & os.O_TRUNC for flags in flags_seen)


@pytest.mark.parametrize("deleted", [1, 3], ids=["the anchored head", "the anchored head and more"])
def test_a_tail_deleted_after_an_anchor_is_named(keyed: Any, deleted: int) -> None:
    events = record_events(5)
    _anchor()
    events += record_events(2, start=6)
    with tampering() as cursor:
        # Cut from the anchored head (#5) on: the rest is a consistent, shorter chain.
        cursor.execute(f"DELETE FROM {AUDIT_TABLE} WHERE sequence >= %s", [6 - deleted])
    first_missing = 6 - deleted
    with pytest.raises(
        CommandError, match=rf"REMOVED: event #{first_missing} and later are missing.*event #5"
    ):
        verify_audit()
    assert exit_code("verify_audit") == 1


def test_a_suffix_rechained_with_the_key_is_caught_by_the_anchor(keyed: Any) -> None:
    """Even an insider holding the key cannot rewrite what an anchor already covers."""
    events = record_events(5)
    _anchor()
    with tampering() as cursor:
        cursor.execute(f"UPDATE {AUDIT_TABLE} SET reason = 'forged' WHERE id = %s", [events[3].pk])
        rehash(cursor, events[3:], lambda prev, e: hashing.chain_hash(prev, e), "k1")
    with pytest.raises(CommandError, match=r"ALTERED: event #5 .*does not match the anchor"):
        verify_audit()


def test_a_garbled_anchor_file_fails_verification(keyed: Any) -> None:
    record_events(1)
    _anchor()
    with Path(keyed.AUDIT_ANCHOR_PATH).open("a") as anchors:
        anchors.write("not json\n")
    with pytest.raises(CommandError, match=r"anchors unreadable: .* line 2 is not an anchor"):
        verify_audit()


# --- Events from before the key (migration 0009) --------------------------------------------


def _make_unkeyed(events: list[AuditEvent]) -> None:
    """Turn the log into what migration 0009 finds: sha256 links, key id unkeyed-sha256."""
    with tampering() as cursor:
        rehash(cursor, events, hashing.unkeyed_hash, hashing.UNKEYED_KEY_ID)


def test_the_migration_anchors_the_unkeyed_segment_which_then_verifies(keyed: Any) -> None:
    old = record_events(3)
    _make_unkeyed(old)
    with pytest.raises(CommandError, match=r"event #1 .*claims to be unkeyed"):
        verify_audit()  # no anchor covers them yet
    keys_migration.anchor_unkeyed_segment(django_apps, None)
    (anchor,) = read_anchors()
    assert (anchor.sequence, anchor.key_id) == (3, hashing.UNKEYED_KEY_ID)
    new = record_events(2, start=4)
    assert new[0].prev_hash == AuditEvent.objects.get(sequence=3).row_hash
    assert verify_audit().startswith("Audit chain intact: 5 events")
    # An unkeyed event past the anchored segment is a forgery.
    _make_unkeyed([new[-1]])
    with pytest.raises(CommandError, match=r"event #5 .*claims to be unkeyed"):
        verify_audit()


def test_migration_0009_leaves_the_append_only_triggers_in_place() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [AUDIT_TABLE],
            )
        names = {row[0] for row in cursor.fetchall()}
    assert {"audit_event_no_update"} <= names
    (event,) = record_events(1)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"UPDATE {AUDIT_TABLE} SET key_id = 'x' WHERE id = %s", [event.pk])
