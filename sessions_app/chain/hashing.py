"""The keyed hash that links audit events: `row_hash = HMAC-SHA-256(key, prev_hash || event)`.

The key comes from the environment only (`AUDIT_HMAC_KEYS`, or `AUDIT_HMAC_KEY` with
`AUDIT_HMAC_KEY_ID`) and never reaches the database: each event stores the id of the key that
signed it, so a rotated key still verifies the events it signed. Events written before the chain
was keyed carry `UNKEYED_KEY_ID` and a plain sha256; `chain.verify` accepts them only inside the
segment that migration 0008's anchor covers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

GENESIS_HASH = "0" * 64
# The key id of events hashed before the chain was keyed (plain sha256, no secret).
UNKEYED_KEY_ID = "unkeyed-sha256"
# Outside production, with no key configured, events are signed with this well-known key;
# `check --deploy` refuses it and production (DJANGO_SECURE) never falls back to it.
DEV_KEY_ID = "dev"
DEV_KEY = "dev-only-audit-hmac-key-not-for-production"
KEY_ID_MAX_LENGTH = 40


class MissingAuditKey(ImproperlyConfigured):
    """Production (DJANGO_SECURE) without an audit key: nothing may be signed."""


@dataclass(frozen=True)
class Keyring:
    """The key that signs new events, and every key that may verify an old one."""

    current_id: str
    keys: dict[str, bytes]

    @property
    def is_dev(self) -> bool:
        """Signing with the public dev key, whether by default or configured by mistake."""
        return self.current_id == DEV_KEY_ID or DEV_KEY.encode() in self.keys.values()


def _parse_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        key_id, sep, secret = item.strip().partition(":")
        if not sep or not key_id.strip() or not secret.strip():
            raise ImproperlyConfigured(
                "AUDIT_HMAC_KEYS must be comma-separated id:secret pairs, the current key first."
            )
        pairs.append((key_id.strip(), secret.strip()))
    return pairs


def keyring() -> Keyring:
    """The configured keys; raises ImproperlyConfigured if they are malformed or missing in
    production (DJANGO_SECURE without a key), so no event is ever signed with a public key there."""
    if settings.AUDIT_HMAC_KEYS:
        pairs = _parse_pairs(settings.AUDIT_HMAC_KEYS)
    elif settings.AUDIT_HMAC_KEY:
        pairs = [(settings.AUDIT_HMAC_KEY_ID, settings.AUDIT_HMAC_KEY)]
    elif settings.SECURE:
        raise MissingAuditKey(
            "DJANGO_SECURE is on: set AUDIT_HMAC_KEY (or AUDIT_HMAC_KEYS) to sign the audit chain."
        )
    else:
        pairs = [(DEV_KEY_ID, DEV_KEY)]
    ids = [key_id for key_id, _ in pairs]
    if len(set(ids)) != len(ids) or UNKEYED_KEY_ID in ids:
        raise ImproperlyConfigured(
            f"Audit key ids must be distinct and not {UNKEYED_KEY_ID!r}: got {ids}."
        )
    if any(len(key_id) > KEY_ID_MAX_LENGTH for key_id in ids):
        raise ImproperlyConfigured(f"Audit key ids are at most {KEY_ID_MAX_LENGTH} characters.")
    return Keyring(current_id=ids[0], keys={k: secret.encode() for k, secret in pairs})


def utc_iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def canonical_event(event: Any) -> bytes:
    """The stable byte form of an event's content, as hashed into the chain.

    Everything an auditor relies on is in it; `sequence` is not (the `prev_hash` link carries
    the order), so a reordering shows up as a broken link rather than as an edit. Neither is
    `key_id`: a wrong one already fails, as the HMAC under the wrong key.
    Changing this function invalidates every existing chain: never do it without a migration.
    """
    content = {
        "action": event.action,
        "actor_id": event.actor_id,
        "actor_username": event.actor_username,
        "created_at": utc_iso(event.created_at),
        "details": event.details,
        "end_user_external_id": event.end_user_external_id,
        "end_user_id": event.end_user_id,
        "ip_address": event.ip_address,
        "outcome": event.outcome,
        "reason": event.reason,
        "request_id": event.request_id,
        "session_id": event.session_id,
        "session_ref": event.session_ref,
        "toolkit_slugs": event.toolkit_slugs,
    }
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str
    ).encode()


def unkeyed_hash(prev_hash: str, event: Any) -> str:
    """The pre-key link (migration 0004 and the events it chained): sha256, no secret."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_event(event)).hexdigest()


class UnknownKey(LookupError):
    """The event names a key id that is not configured here."""


def chain_hash(prev_hash: str, event: Any, ring: Keyring | None = None) -> str:
    """The link of `event` after `prev_hash` under the key its `key_id` names.

    Raises UnknownKey when that key is not configured (never falls back to another key)."""
    if event.key_id == UNKEYED_KEY_ID:
        return unkeyed_hash(prev_hash, event)
    ring = ring if ring is not None else keyring()
    key = ring.keys.get(event.key_id)
    if key is None:
        raise UnknownKey(event.key_id)
    message = prev_hash.encode("ascii") + canonical_event(event)
    return hmac.new(key, message, hashlib.sha256).hexdigest()
