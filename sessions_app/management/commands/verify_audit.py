"""Verify the audit log's keyed hash chain against AUDIT_HMAC_KEYS and the anchors in
AUDIT_ANCHOR_PATH. Exits non-zero naming the first event that was altered, removed, reordered,
re-chained or signed with another key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.chain.anchors import AnchorFileError
from sessions_app.chain.verify import find_first_break
from sessions_app.models import AuditEvent


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--head",
            metavar="SEQUENCE:HASH",
            help="A head printed by an earlier run (kept outside the database): also checks that "
            "this event is still there, unchanged, so a cut-off tail is caught too.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            verdict = find_first_break()
        except AnchorFileError as exc:
            raise CommandError(f"Audit anchors unreadable: {exc}") from exc
        if verdict.problem is not None:
            raise CommandError(
                f"Audit chain BROKEN after checking {verdict.checked} events. {verdict.problem}"
            )
        if options["head"]:
            sequence, _, expected_hash = options["head"].partition(":")
            row = AuditEvent.objects.filter(sequence=int(sequence)).values_list("row_hash").first()
            if row is None or row[0] != expected_hash:
                raise CommandError(
                    f"Audit chain BROKEN: the recorded head #{sequence} is missing or changed "
                    "(events at the end of the log were removed)."
                )
        checked = verdict.checked
        self.stdout.write(
            f"Audit chain intact: {checked} events"
            + (f", head #{checked}:{verdict.head_hash}" if checked else "")
        )
        if verdict.anchors:
            self.stdout.write(f"Anchors matched: {verdict.anchors}")
