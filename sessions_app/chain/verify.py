"""Walk the audit chain against the keys and the anchors; name the first event that fails."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sessions_app.chain.anchors import Anchor, read_anchors
from sessions_app.chain.hashing import (
    GENESIS_HASH,
    UNKEYED_KEY_ID,
    Keyring,
    UnknownKey,
    chain_hash,
    keyring,
)
from sessions_app.models import AuditEvent


@dataclass(frozen=True)
class Verdict:
    """What one walk found: events checked, the first problem (None: intact), the head, anchors."""

    checked: int
    problem: str | None
    head_hash: str
    anchors: int


def describe(event: AuditEvent) -> str:
    return (
        f"event #{event.sequence} (id {event.pk}, {event.action} {event.outcome} "
        f"at {event.created_at:%Y-%m-%d %H:%M:%S} UTC)"
    )


def _link_problem(
    event: AuditEvent, expected: int, prev: AuditEvent | None, prev_hash: str
) -> str | None:
    """A gap before `event`, or a `prev_hash` that is not its predecessor's hash."""
    after = describe(prev) if prev is not None else "the start of the log"
    if event.sequence > expected:
        missing = (
            f"#{expected}"
            if event.sequence == expected + 1
            else f"#{expected} to #{event.sequence - 1}"
        )
        return f"REMOVED: {missing} missing between {after} and {describe(event)}."
    if event.prev_hash == prev_hash:
        return None
    later = (
        AuditEvent.objects.filter(row_hash=event.prev_hash, sequence__gt=event.sequence)
        .order_by("sequence")
        .first()
    )
    if later is not None:
        return (
            f"REORDERED: {describe(event)} was written after {describe(later)}, "
            "which now comes later in the log."
        )
    return (
        f"ALTERED: {after} no longer matches the hash that {describe(event)} recorded "
        "for its predecessor (it was changed, or replaced)."
    )


def _hash_problem(
    event: AuditEvent, ring: Keyring, unkeyed_until: int, keyed_seen: bool
) -> str | None:
    """The event's own hash under the key it names; unkeyed only where the first anchor allows."""
    if event.key_id == UNKEYED_KEY_ID and (keyed_seen or event.sequence > unkeyed_until):
        return (
            f"ALTERED: {describe(event)} claims to be unkeyed ({UNKEYED_KEY_ID}), but no anchor "
            "covers it as part of the log written before the chain was keyed."
        )
    try:
        expected = chain_hash(event.prev_hash, event, ring)
    except UnknownKey:
        return (
            f"ALTERED: {describe(event)} names key id {event.key_id!r}, which is not configured "
            "(AUDIT_HMAC_KEYS): it was signed elsewhere, or the key was dropped."
        )
    if expected != event.row_hash:
        return (
            f"ALTERED: {describe(event)} does not match its hash under key {event.key_id!r} "
            "(changed, re-chained without the key, or verified with a different key)."
        )
    return None


def _anchor_problem(event: AuditEvent, anchors: Iterable[Anchor]) -> str | None:
    for anchor in anchors:
        if (anchor.id, anchor.row_hash, anchor.key_id) != (event.pk, event.row_hash, event.key_id):
            return (
                f"ALTERED: {describe(event)} does not match the anchor written at "
                f"{anchor.anchored_at} (anchor file line {anchor.line}): it, or events before "
                "it back to the previous anchor, were rewritten and re-chained."
            )
    return None


def _tail_problem(anchors: list[Anchor], last: AuditEvent | None) -> str | None:
    beyond = [anchor for anchor in anchors if last is None or anchor.sequence > last.sequence]
    if not beyond:
        return None
    anchor = max(beyond, key=lambda a: a.sequence)
    first_missing = 1 if last is None else last.sequence + 1
    ends = f"the log ends at {describe(last)}" if last is not None else "the log is empty"
    return (
        f"REMOVED: event #{first_missing} and later are missing: the anchor written at "
        f"{anchor.anchored_at} (anchor file line {anchor.line}) recorded event #{anchor.sequence} "
        f"(id {anchor.id}), but {ends}."
    )


def find_first_break(*, chunk_size: int = 5000, anchors: list[Anchor] | None = None) -> Verdict:
    """Walk every event in order; stop at the first one that fails its link, key or anchor."""
    anchors = read_anchors() if anchors is None else anchors
    ring = keyring()
    by_sequence: dict[int, list[Anchor]] = defaultdict(list)
    for anchor in anchors:
        by_sequence[anchor.sequence].append(anchor)
    unkeyed_until = max((a.sequence for a in anchors if a.key_id == UNKEYED_KEY_ID), default=0)
    expected, prev_hash, prev, keyed_seen, checked = 1, GENESIS_HASH, None, False, 0
    for event in AuditEvent.objects.order_by("sequence").iterator(chunk_size=chunk_size):
        checked += 1
        problem = (
            _link_problem(event, expected, prev, prev_hash)
            or _hash_problem(event, ring, unkeyed_until, keyed_seen)
            or _anchor_problem(event, by_sequence.get(event.sequence, ()))
        )
        if problem is not None:
            return Verdict(checked, problem, "", len(anchors))
        keyed_seen = keyed_seen or event.key_id != UNKEYED_KEY_ID
        expected, prev_hash, prev = expected + 1, event.row_hash, event
    problem = _tail_problem(anchors, prev)
    return Verdict(checked, problem, "" if problem else prev_hash, len(anchors))
