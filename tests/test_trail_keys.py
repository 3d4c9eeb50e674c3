"""The audit chain is keyed (HMAC-SHA-256, key ids, rotation) and anchored outside the database;
verify_audit names the first bad event for a cut tail, an edit, a re-chained suffix, another key.

Tampering is done as a database operator would: raw SQL with the append-only triggers disabled.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.conf import settings as django_settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from sessions_app import trail
from sessions_app.chain import hashing
from sessions_app.chain.anchors import read_anchors
from sessions_app.models import AuditEvent

TABLE = AuditEvent._meta.db_table
chain_migration = importlib.import_module("sessions_app.migrations.0004_audit_chain")
keys_migration = importlib.import_module("sessions_app.migrations.0009_audit_keys")
BASE_DIR = Path(django_settings.BASE_DIR)

K1 = "k1:first-secret-of-at-least-thirty-two-chars"
K2 = "k2:second-secret-of-at-least-thirty-two-chars"


@pytest.fixture
def keyed(settings: Any) -> Any:
    """Production-like keys: k1 only (tests rotate by changing the setting)."""
    settings.AUDIT_HMAC_KEYS = K1
    return settings


@contextmanager
def tampering() -> Iterator[Any]:
    """A cursor with the append-only triggers off: what the database owner could do."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for sql in chain_migration.SQLITE_DROP:
                cursor.execute(sql)
        else:
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
        try:
            yield cursor
        finally:
            if connection.vendor == "sqlite":
                for sql in chain_migration.SQLITE_TRIGGERS:
                    cursor.execute(sql)
            else:
                cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER USER")


def _events(count: int, start: int = 1) -> list[AuditEvent]:
    return [
        trail.record(action="catalog.sync", outcome="success", reason=f"event {n}")
        for n in range(start, start + count)
    ]


def _check_ids(*, deploy: bool) -> list[str]:
    """This app's system check messages, as `check [--deploy]` would report them."""
    found = checks.run_checks(include_deployment_checks=deploy)
    return [f"{m.id}: {m.msg}" for m in found if m.id and m.id.startswith("sessions_app.")]


def _verify() -> str:
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def _anchor() -> str:
    out = io.StringIO()
    call_command("anchor_audit", stdout=out)
    return out.getvalue()


def _exit_code(*argv: str) -> int:
    """Run a command as `manage.py` would, returning its exit status."""
    try:
        ManagementUtility(["manage.py", *argv]).execute()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _rehash(cursor: Any, events: list[AuditEvent], make_hash: Any, key_id: str) -> None:
    """Rewrite the links of `events` (in order) with `make_hash(prev_hash, event)`."""
    prev = AuditEvent.objects.get(pk=events[0].pk).prev_hash
    for event in events:
        stored = AuditEvent.objects.get(pk=event.pk)
        stored.key_id = key_id
        row_hash = make_hash(prev, stored)
        cursor.execute(
            f"UPDATE {TABLE} SET prev_hash = %s, row_hash = %s, key_id = %s WHERE id = %s",
            [prev, row_hash, key_id, event.pk],
        )
        prev = row_hash


# --- Keyed ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_event_is_an_hmac_under_the_current_key_and_names_it(keyed: Any) -> None:
    first, second = _events(2)
    assert first.key_id == second.key_id == "k1"
    stored = AuditEvent.objects.get(pk=second.pk)
    secret = K1.split(":", 1)[1].encode()
    message = stored.prev_hash.encode() + hashing.canonical_event(stored)
    assert stored.row_hash == hmac.new(secret, message, hashlib.sha256).hexdigest()
    assert stored.row_hash != hashlib.sha256(message).hexdigest()


@pytest.mark.django_db
def test_the_key_is_never_stored_in_the_database(keyed: Any) -> None:
    _events(2)
    secret = K1.split(":", 1)[1]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {TABLE}")
        rows = cursor.fetchall()
    assert rows and all(secret not in str(value) for row in rows for value in row)


@pytest.mark.django_db
def test_a_single_key_with_its_id(settings: Any) -> None:
    settings.AUDIT_HMAC_KEYS = ""
    settings.AUDIT_HMAC_KEY, settings.AUDIT_HMAC_KEY_ID = "a-single-key-of-some-length", "prod-1"
    (event,) = _events(1)
    assert event.key_id == "prod-1"
    assert _verify().startswith("Audit chain intact: 1 events")


@pytest.mark.django_db
def test_rotation_the_new_key_signs_and_the_old_one_still_verifies(keyed: Any) -> None:
    old = _events(2)
    keyed.AUDIT_HMAC_KEYS = f"{K2},{K1}"
    new = _events(2, start=3)
    assert [e.key_id for e in old + new] == ["k1", "k1", "k2", "k2"]
    assert _verify().startswith("Audit chain intact: 4 events")
    # Dropping the old key leaves its events unverifiable: verify_audit says so, naming #1.
    keyed.AUDIT_HMAC_KEYS = K2
    with pytest.raises(CommandError, match=r"event #1 \(id \d+.*key id 'k1', which is not config"):
        _verify()


@pytest.mark.django_db
def test_a_different_key_fails_at_the_first_event(keyed: Any) -> None:
    _events(3)
    keyed.AUDIT_HMAC_KEYS = "k1:someone-elses-secret-for-the-same-key-id"
    with pytest.raises(CommandError, match=r"ALTERED: event #1 \(id \d+.*under key 'k1'"):
        _verify()
    assert _exit_code("verify_audit") == 1


@pytest.mark.django_db
def test_a_rewritten_event_is_named(keyed: Any) -> None:
    events = _events(5)
    with tampering() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET reason = 'nothing here' WHERE id = %s", [events[2].pk])
    with pytest.raises(CommandError, match=rf"ALTERED: event #3 \(id {events[2].pk},"):
        _verify()
    assert _exit_code("verify_audit") == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("key_id", "make_hash", "message"),
    [
        ("k1", hashing.unkeyed_hash, r"does not match its hash under key 'k1'"),
        (
            "k1",
            lambda prev, e: hmac.new(
                b"guessed", prev.encode() + hashing.canonical_event(e), hashlib.sha256
            ).hexdigest(),
            r"does not match its hash under key 'k1'",
        ),
        (hashing.UNKEYED_KEY_ID, hashing.unkeyed_hash, r"claims to be unkeyed"),
        ("dev", lambda prev, e: hashing.chain_hash(prev, e), r"key id 'dev', which is not"),
    ],
    ids=["plain sha256", "a guessed key", "relabelled unkeyed", "the public dev key"],
)
def test_a_suffix_rechained_without_the_key_is_named(
    keyed: Any, key_id: str, make_hash: Any, message: str
) -> None:
    events = _events(6)
    with tampering() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET reason = 'forged' WHERE id = %s", [events[3].pk])
        with_dev_key = key_id == "dev"
        if with_dev_key:
            keyed.AUDIT_HMAC_KEYS = ""  # the forger signs with the public dev key...
        _rehash(cursor, events[3:], make_hash, key_id)
        keyed.AUDIT_HMAC_KEYS = K1  # ...which production never accepts.
    with pytest.raises(CommandError, match=rf"ALTERED: event #4 \(id {events[3].pk},.*{message}"):
        _verify()


# --- Anchored -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_anchor_audit_appends_the_head_as_one_json_line(keyed: Any) -> None:
    assert _anchor() == "The audit log is empty: nothing to anchor.\n"
    path = Path(keyed.AUDIT_ANCHOR_PATH)
    assert not path.exists()
    first = _events(2)[-1]
    assert _anchor().startswith(f"Anchored event #2:{first.row_hash} (key k1) in {path}")
    last = _events(1, start=3)[-1]
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
    assert _verify().endswith("Anchors matched: 2\n")


@pytest.mark.django_db
def test_the_anchor_file_is_opened_append_only(keyed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _events(1)
    flags_seen: list[int] = []
    real_open = os.open

    def spy(path: Any, flags: int, *args: Any) -> int:
        flags_seen.append(flags)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", spy)
    _anchor()
    assert flags_seen and all(flags & os.O_APPEND for flags in flags_seen)
    assert not any(flags & os.O_TRUNC for flags in flags_seen)


@pytest.mark.django_db
@pytest.mark.parametrize("deleted", [1, 3], ids=["the anchored head", "the anchored head and more"])
def test_a_tail_deleted_after_an_anchor_is_named(keyed: Any, deleted: int) -> None:
    events = _events(5)
    _anchor()
    events += _events(2, start=6)
    with tampering() as cursor:
        # Cut from the anchored head (#5) on: the rest is a consistent, shorter chain.
        cursor.execute(f"DELETE FROM {TABLE} WHERE sequence >= %s", [6 - deleted])
    first_missing = 6 - deleted
    with pytest.raises(
        CommandError, match=rf"REMOVED: event #{first_missing} and later are missing.*event #5"
    ):
        _verify()
    assert _exit_code("verify_audit") == 1


@pytest.mark.django_db
def test_a_suffix_rechained_with_the_key_is_caught_by_the_anchor(keyed: Any) -> None:
    """Even an insider holding the key cannot rewrite what an anchor already covers."""
    events = _events(5)
    _anchor()
    with tampering() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET reason = 'forged' WHERE id = %s", [events[3].pk])
        _rehash(cursor, events[3:], lambda prev, e: hashing.chain_hash(prev, e), "k1")
    with pytest.raises(CommandError, match=r"ALTERED: event #5 .*does not match the anchor"):
        _verify()


@pytest.mark.django_db
def test_a_garbled_anchor_file_fails_verification(keyed: Any) -> None:
    _events(1)
    _anchor()
    with Path(keyed.AUDIT_ANCHOR_PATH).open("a") as anchors:
        anchors.write("not json\n")
    with pytest.raises(CommandError, match=r"anchors unreadable: .* line 2 is not an anchor"):
        _verify()


# --- Events from before the key (migration 0008) --------------------------------------------


def _make_unkeyed(events: list[AuditEvent]) -> None:
    """Turn the log into what migration 0008 finds: sha256 links, key id unkeyed-sha256."""
    with tampering() as cursor:
        _rehash(cursor, events, hashing.unkeyed_hash, hashing.UNKEYED_KEY_ID)


@pytest.mark.django_db
def test_the_migration_anchors_the_unkeyed_segment_which_then_verifies(keyed: Any) -> None:
    old = _events(3)
    _make_unkeyed(old)
    with pytest.raises(CommandError, match=r"event #1 .*claims to be unkeyed"):
        _verify()  # no anchor covers them yet
    keys_migration.anchor_unkeyed_segment(django_apps, None)
    (anchor,) = read_anchors()
    assert (anchor.sequence, anchor.key_id) == (3, hashing.UNKEYED_KEY_ID)
    new = _events(2, start=4)
    assert new[0].prev_hash == AuditEvent.objects.get(sequence=3).row_hash
    assert _verify().startswith("Audit chain intact: 5 events")
    # An unkeyed event past the anchored segment is a forgery.
    _make_unkeyed([new[-1]])
    with pytest.raises(CommandError, match=r"event #5 .*claims to be unkeyed"):
        _verify()


@pytest.mark.django_db
def test_migration_0008_leaves_the_append_only_triggers_in_place() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [TABLE],
            )
        names = {row[0] for row in cursor.fetchall()}
    assert {"audit_event_no_update"} <= names
    (event,) = _events(1)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"UPDATE {TABLE} SET key_id = 'x' WHERE id = %s", [event.pk])


# --- Required in production -----------------------------------------------------------------


@pytest.mark.django_db
def test_production_without_a_key_writes_no_event(settings: Any) -> None:
    settings.SECURE, settings.AUDIT_HMAC_KEYS, settings.AUDIT_HMAC_KEY = True, "", ""
    with pytest.raises(ImproperlyConfigured, match="AUDIT_HMAC_KEY"):
        trail.record(action="catalog.sync", outcome="success")
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("k1", "id:secret pairs"),
        ("k1:a,k1:b", "distinct"),
        (f"{hashing.UNKEYED_KEY_ID}:secret", "distinct and not"),
    ],
)
def test_malformed_keys_fail_the_system_check(settings: Any, keys: str, message: str) -> None:
    settings.AUDIT_HMAC_KEYS = keys
    (found,) = _check_ids(deploy=False)
    assert found.startswith("sessions_app.E001") and message in found


def test_a_missing_production_key_is_a_deploy_check(settings: Any) -> None:
    settings.SECURE, settings.AUDIT_HMAC_KEYS, settings.AUDIT_HMAC_KEY = True, "", ""
    assert _check_ids(deploy=False) == []  # migrate may still run
    (found,) = _check_ids(deploy=True)
    assert found.startswith("sessions_app.E002: DJANGO_SECURE is on")


def test_check_deploy_refuses_the_dev_key(settings: Any) -> None:
    settings.AUDIT_HMAC_KEYS = settings.AUDIT_HMAC_KEY = ""
    (found,) = _check_ids(deploy=True)
    assert found.startswith("sessions_app.E002") and "public development key" in found
    settings.AUDIT_HMAC_KEY = hashing.DEV_KEY  # the dev key configured under another id
    assert [m[:17] for m in _check_ids(deploy=True)] == ["sessions_app.E002"]
    settings.AUDIT_HMAC_KEY = "a-production-key"
    assert _check_ids(deploy=True) == []


def _deploy_check(**extra: str) -> subprocess.CompletedProcess[str]:
    """`check --deploy` with the production environment of .ci/run."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "AUDIT_"))},
        "DJANGO_SECURE": "true",
        "DJANGO_SECRET_KEY": "x" * 10 + "".join(chr(65 + n % 26) for n in range(50)),
        "DJANGO_ALLOWED_HOSTS": "console.example.com",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://console.example.com",
        "AUDIT_HMAC_KEY": "",
        "AUDIT_HMAC_KEYS": "",
        **extra,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_with_production_settings_fails_without_the_audit_key() -> None:
    missing = _deploy_check()
    assert missing.returncode != 0
    assert "sessions_app.E002" in missing.stderr and "set AUDIT_HMAC_KEY" in missing.stderr
    present = _deploy_check(AUDIT_HMAC_KEY="a-production-audit-key-from-the-secret-store")
    assert present.returncode == 0, present.stderr
    assert "no issues" in present.stdout


# --- PostgreSQL roles -----------------------------------------------------------------------


@pytest.mark.django_db
def test_audit_grants_needs_postgresql() -> None:
    if connection.vendor == "postgresql":
        pytest.skip("SQLite only")
    with pytest.raises(CommandError, match="PostgreSQL"):
        call_command("audit_grants", app_role="app", owner_role="owner")


@pytest.mark.django_db
def test_audit_grants_refuses_a_role_name_that_is_not_plain() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    with pytest.raises(CommandError, match="not a plain"):
        call_command("audit_grants", app_role='app"; DROP TABLE x; --', owner_role="owner")


@pytest.mark.django_db
def test_the_app_role_may_only_insert_and_select_audit_events(keyed: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has no roles")
    _events(2)
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
    assert f'GRANT SELECT, INSERT ON "{TABLE}" TO "trc_test_app";' in printed
    assert f'ALTER TABLE "{TABLE}" OWNER TO "trc_test_owner";' in printed
    with connection.cursor() as cursor:
        cursor.execute("SET ROLE trc_test_app")
        try:
            (event,) = _events(1, start=3)  # INSERT and SELECT work
            assert event.sequence == 3
            refused = [
                f"UPDATE {TABLE} SET reason = 'x'",
                f"DELETE FROM {TABLE}",
                f"TRUNCATE {TABLE}",
                f"ALTER TABLE {TABLE} DISABLE TRIGGER USER",
                f"DROP TABLE {TABLE}",
            ]
            for sql in refused:
                with (
                    pytest.raises(DatabaseError, match="permission denied|must be owner"),
                    transaction.atomic(),
                ):
                    cursor.execute(sql)
        finally:
            cursor.execute("RESET ROLE")
    assert _verify().startswith("Audit chain intact: 3 events")
