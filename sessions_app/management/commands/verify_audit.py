"""Walk the audit hash chain and name the first event that was altered, removed or reordered."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.models import AuditEvent
from sessions_app.trail import GENESIS_HASH, chain_hash


def _describe(event: AuditEvent) -> str:
    return (
        f"event #{event.sequence} (id {event.pk}, {event.action} {event.outcome} "
        f"at {event.created_at:%Y-%m-%d %H:%M:%S} UTC)"
    )


def find_first_break(*, chunk_size: int = 5000) -> tuple[int, str | None, str]:
    """Return (events checked, the first problem or None, the head hash)."""
    expected, prev_hash, prev = 1, GENESIS_HASH, None
    checked = 0
    for event in AuditEvent.objects.order_by("sequence").iterator(chunk_size=chunk_size):
        checked += 1
        if event.sequence > expected:
            missing = (
                f"#{expected}"
                if event.sequence == expected + 1
                else f"#{expected} to #{event.sequence - 1}"
            )
            after = _describe(prev) if prev is not None else "the start of the log"
            return (
                checked,
                f"REMOVED: {missing} missing between {after} and {_describe(event)}.",
                "",
            )
        if event.prev_hash != prev_hash:
            later = (
                AuditEvent.objects.filter(row_hash=event.prev_hash, sequence__gt=event.sequence)
                .order_by("sequence")
                .first()
            )
            if later is not None:
                return (
                    checked,
                    f"REORDERED: {_describe(event)} was written after {_describe(later)}, "
                    "which now comes later in the log.",
                    "",
                )
            before = _describe(prev) if prev is not None else "the start of the log"
            return (
                checked,
                f"ALTERED: {before} no longer matches the hash that {_describe(event)} recorded "
                "for its predecessor (it was changed, or replaced).",
                "",
            )
        if chain_hash(event.prev_hash, event) != event.row_hash:
            return checked, f"ALTERED: {_describe(event)} does not match its hash.", ""
        expected, prev_hash, prev = expected + 1, event.row_hash, event
    return checked, None, prev_hash


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain. Exits non-zero naming the first event that was "
        "altered, removed or reordered."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--head",
            metavar="SEQUENCE:HASH",
            help="A head printed by an earlier run (kept outside the database): also checks that "
            "this event is still there, unchanged, so a cut-off tail is caught too.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        checked, problem, head_hash = find_first_break()
        if problem is not None:
            raise CommandError(f"Audit chain BROKEN after checking {checked} events. {problem}")
        if options["head"]:
            sequence, _, expected_hash = options["head"].partition(":")
            row = AuditEvent.objects.filter(sequence=int(sequence)).values_list("row_hash").first()
            if row is None or row[0] != expected_hash:
                raise CommandError(
                    f"Audit chain BROKEN: the recorded head #{sequence} is missing or changed "
                    "(events at the end of the log were removed)."
                )
        self.stdout.write(
            f"Audit chain intact: {checked} events"
            + (f", head #{checked}:{head_hash}" if checked else "")
        )
