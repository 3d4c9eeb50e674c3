"""The audit chain is keyed: each link an HMAC-SHA-256 under the current key, which the event names
(`sessions_app.chain.hashing`); keys rotate; verify_audit names the first event that does not
match its key: an edit, a suffix re-chained without the key, a key that is not configured.

Tampering is done as a database operator would: raw SQL with the append-only triggers disabled.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from django.core.management.base import CommandError
from django.db import connection

from sessions_app.chain import hashing
from sessions_app.models import AuditEvent
from tests.factories import AUDIT_KEY_K1, record_events
from tests.helpers import AUDIT_TABLE, exit_code, rehash, tampering, verify_audit

K2 = "k2:second-secret-of-at-least-thirty-two-chars"

pytestmark = pytest.mark.django_db


def test_each_event_is_an_hmac_under_the_current_key_and_names_it(keyed: Any) -> None:
    first, second = record_events(2)
    assert first.key_id == second.key_id == "k1"
    stored = AuditEvent.objects.get(pk=second.pk)
    secret = AUDIT_KEY_K1.split(":", 1)[1].encode()
    message = stored.prev_hash.encode() + hashing.canonical_event(stored)
    assert stored.row_hash == hmac.new(secret, message, hashlib.sha256).hexdigest()
    assert stored.row_hash != hashlib.sha256(message).hexdigest()


def test_the_key_is_never_stored_in_the_database(keyed: Any) -> None:
    record_events(2)
    secret = AUDIT_KEY_K1.split(":", 1)[1]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {AUDIT_TABLE}")
        rows = cursor.fetchall()
    assert rows and all(secret not in str(value) for row in rows for value in row)


def test_a_single_key_with_its_id(settings: Any) -> None:
    settings.AUDIT_HMAC_KEYS = ""
    settings.AUDIT_HMAC_KEY, settings.AUDIT_HMAC_KEY_ID = "a-single-key-of-some-length", "prod-1"
    (event,) = record_events(1)
    assert event.key_id == "prod-1"
    assert verify_audit().startswith("Audit chain intact: 1 events")


def test_rotation_the_new_key_signs_and_the_old_one_still_verifies(keyed: Any) -> None:
    old = record_events(2)
    keyed.AUDIT_HMAC_KEYS = f"{K2},{AUDIT_KEY_K1}"
    new = record_events(2, start=3)
    assert [e.key_id for e in old + new] == ["k1", "k1", "k2", "k2"]
    assert verify_audit().startswith("Audit chain intact: 4 events")
    # Dropping the old key leaves its events unverifiable: verify_audit says so, naming #1.
    keyed.AUDIT_HMAC_KEYS = K2
    with pytest.raises(CommandError, match=r"event #1 \(id \d+.*key id 'k1', which is not config"):
        verify_audit()


def test_a_different_key_fails_at_the_first_event(keyed: Any) -> None:
    record_events(3)
    keyed.AUDIT_HMAC_KEYS = "k1:someone-elses-secret-for-the-same-key-id"
    with pytest.raises(CommandError, match=r"ALTERED: event #1 \(id \d+.*under key 'k1'"):
        verify_audit()
    assert exit_code("verify_audit") == 1


def test_a_rewritten_event_is_named(keyed: Any) -> None:
    events = record_events(5)
    with tampering() as cursor:
        cursor.execute(
            f"UPDATE {AUDIT_TABLE} SET reason = 'nothing here' WHERE id = %s", [events[2].pk]
        )
    with pytest.raises(CommandError, match=rf"ALTERED: event #3 \(id {events[2].pk},"):
        verify_audit()
    assert exit_code("verify_audit") == 1


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
    events = record_events(6)
    with tampering() as cursor:
        cursor.execute(f"UPDATE {AUDIT_TABLE} SET reason = 'forged' WHERE id = %s", [events[3].pk])
        with_dev_key = key_id == "dev"
        if with_dev_key:
            keyed.AUDIT_HMAC_KEYS = ""  # the forger signs with the public dev key...
        rehash(cursor, events[3:], make_hash, key_id)
        keyed.AUDIT_HMAC_KEYS = AUDIT_KEY_K1  # ...which production never accepts.
    with pytest.raises(CommandError, match=rf"ALTERED: event #4 \(id {events[3].pk},.*{message}"):
        verify_audit()
