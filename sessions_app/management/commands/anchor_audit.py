"""Append the audit chain's head (sequence, id, hash, key id, time) as one JSON line to
AUDIT_ANCHOR_PATH, opened append-only. Run it every few minutes and ship the file off the host;
verify_audit then catches a deleted or re-chained tail."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from sessions_app import housekeeping
from sessions_app.chain.anchors import anchor_head, anchor_path


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--schedule",
            action="store_true",
            help="Also make the task workers anchor every AUDIT_HOUSEKEEPING_SECONDS from now on "
            "(books the first run unless one is already booked).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["schedule"] and not housekeeping.periodic():
            self.stdout.write(
                "The task backend runs tasks inline: no periodic anchoring; run this from cron."
            )
        elif options["schedule"]:
            booked = housekeeping.schedule()
            self.stdout.write(
                "The task workers will anchor the chain every "
                f"{settings.AUDIT_HOUSEKEEPING_SECONDS} s"
                + ("." if booked else " (already booked).")
            )
        anchor = anchor_head()
        if anchor is None:
            self.stdout.write("The audit log is empty: nothing to anchor.")
            return
        self.stdout.write(
            f"Anchored event #{anchor.sequence}:{anchor.row_hash} (key {anchor.key_id}) "
            f"in {anchor_path()}"
        )
