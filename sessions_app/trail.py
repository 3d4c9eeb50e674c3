"""The one way to write the audit trail.

Every event is a link of one keyed hash chain: `row_hash = HMAC-SHA-256(key, prev_hash ||
canonical event)` under the current key of `AUDIT_HMAC_KEYS` (its id stored in `key_id`), with a
gapless `sequence` (`sessions_app.chain`). Writers are serialised (a PostgreSQL advisory lock;
SQLite's IMMEDIATE transactions) so the chain never forks; `manage.py verify_audit` walks it
against the keys and the anchors that `manage.py anchor_audit` writes.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from sessions_app.chain.hashing import (  # noqa: F401  (re-exported: the trail's one hash)
    GENESIS_HASH,
    canonical_event,
    chain_hash,
    keyring,
)
from sessions_app.models import AuditEvent, EndUser, ToolRouterSession
from sessions_app.request_context import NO_REQUEST_ID, client_ip, current_request_id

# Keys that would carry a secret or a full MCP URL; writing one is a programming error.
_FORBIDDEN_KEYS = frozenset({"mcp_url", "url", "headers", "api_key", "x-api-key", "mcp_headers"})


def scrub(value: Any) -> Any:
    """`value` as the trail stores it: no NUL byte, the API key redacted, no secret-bearing key."""
    api_key = settings.COMPOSIO_API_KEY
    if isinstance(value, str):
        # PostgreSQL stores no NUL byte (in text or jsonb), and posted input may carry one.
        value = value.replace("\x00", "\ufffd")
        return value.replace(api_key, "[redacted]") if api_key and api_key in value else value
    if isinstance(value, Mapping):
        bad = _FORBIDDEN_KEYS.intersection(str(k).lower() for k in value)
        if bad:
            raise ValueError(f"Audit details must not carry {sorted(bad)}; log a fingerprint.")
        return {str(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(v) for v in value]
    return value


# --- The hash chain ---------------------------------------------------------------------------

# pg_advisory_xact_lock key that serialises audit writers ("trcaudit" as a 64-bit integer).
CHAIN_LOCK_KEY = int.from_bytes(b"trcaudit", "big") - 2**63


def _lock_chain() -> None:
    # Held until the surrounding transaction ends, so the next writer reads our committed head.
    # SQLite needs nothing: its transactions are IMMEDIATE (console/settings.py), one writer at
    # a time; the unique `sequence` refuses a fork on any database regardless.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])


def _chain_head() -> tuple[int, str, dt.datetime | None]:
    head = (
        AuditEvent.objects.order_by("-sequence")
        .values_list("sequence", "row_hash", "created_at")
        .first()
    )
    return head if head is not None else (0, GENESIS_HASH, None)


_TOOLKIT_KEYS = frozenset({"toolkit", "toolkits", "slug", "slugs"})
# catalog.sync lists toolkits under the kind of change.
_CATALOG_KEYS = frozenset(
    {"added", "updated", "vanished", "returned", "removed", "before", "after"}
)


def _toolkit_slugs(
    action: str, details: Mapping[str, Any], session: ToolRouterSession | None
) -> str:
    found: set[str] = set()

    def take(value: Any) -> None:
        items: Iterable[Any] = value if isinstance(value, list | tuple | set) else [value]
        for item in items:
            if isinstance(item, str) and item and " " not in item:
                found.add(item.lower())

    for key, value in details.items():
        key = str(key).lower()
        names_toolkits = (
            key in _TOOLKIT_KEYS
            or key.endswith("_toolkits")
            or key.startswith("toolkits_")
            or (key in _CATALOG_KEYS and action.startswith(("catalog.", "toolkit.", "session.")))
        )
        if names_toolkits:
            take(value)
    if session is not None and isinstance(session.toolkits, list):
        take(session.toolkits)
    joined = " ".join(sorted(found))
    if len(joined) > 1990:
        joined = joined[:1990].rsplit(" ", 1)[0]
    return f" {joined} " if joined else ""


def record(
    *,
    action: str,
    outcome: str,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    request: HttpRequest | None = None,
    end_user: EndUser | None = None,
    session: ToolRouterSession | None = None,
    reason: str = "",
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Raises if it cannot be written: callers that fail closed rely on it."""
    if outcome not in AuditEvent.Outcome.values:
        raise ValueError(f"Unknown audit outcome {outcome!r}")
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    user = actor if actor is not None and actor.is_authenticated else None
    clean_details = scrub(dict(details or {}))
    # Round-trip through JSON so the hashed form is exactly what the database gives back.
    clean_details = json.loads(json.dumps(clean_details, default=str))
    event = AuditEvent(
        actor=user,
        actor_username=user.get_username() if user is not None else "",
        ip_address=client_ip(request),
        request_id=getattr(request, "request_id", None) or _request_id_or_blank(),
        action=action,
        outcome=outcome,
        end_user=end_user,
        end_user_external_id=end_user.external_id if end_user is not None else "",
        session=session,
        session_ref=session.session_id if session is not None else "",
        reason=scrub(reason)[:500],
        details=clean_details,
        toolkit_slugs=_toolkit_slugs(action, clean_details, session),
    )
    # Read before the lock: a missing production key fails here, before anything is written.
    ring = keyring()
    with transaction.atomic():
        _lock_chain()
        last_sequence, prev_hash, last_at = _chain_head()
        # Taken under the lock and never before the previous event (even if the clock is
        # stepped back), so time order and chain order agree: the log's date filter relies on it.
        now = timezone.now()
        event.created_at = now if last_at is None or now >= last_at else last_at
        event.sequence = last_sequence + 1
        event.prev_hash = prev_hash
        event.key_id = ring.current_id
        event.row_hash = chain_hash(prev_hash, event, ring)
        event.save(force_insert=True)
    return event


def session_recorder(
    action: str,
    session: ToolRouterSession,
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None = None,
    details: Mapping[str, Any] | None = None,
) -> Callable[..., AuditEvent]:
    """`record` for one kind of event about `session` and its end user: the function returned
    takes the outcome and, optionally, the reason."""

    def record_outcome(outcome: str, reason: str = "") -> AuditEvent:
        return record(
            action=action,
            outcome=outcome,
            actor=actor,
            request=request,
            end_user=session.end_user,
            session=session,
            reason=reason,
            details=details,
        )

    return record_outcome


def _request_id_or_blank() -> str:
    request_id = current_request_id()
    return "" if request_id == NO_REQUEST_ID else request_id


# --- Flushing a test database -----------------------------------------------------------------

_erasable = threading.Event()


def sqlite_erasable() -> int:
    """Backs the SQLite function trc_audit_erasable() that the DELETE trigger consults."""
    return 1 if _erasable.is_set() else 0


@contextmanager
def erasable_for_test_flush() -> Iterator[None]:
    """Let `manage.py flush` empty a TEST database's audit table; nothing else deletes events."""
    _erasable.set()
    try:
        yield
    finally:
        _erasable.clear()
