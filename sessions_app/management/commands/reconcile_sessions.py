"""Settle intents left pending or unknown and superseded sessions not yet deleted at Composio."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.tool_router import reconcile

# Exit codes: 0 everything settled, or nothing to do; 1 items need a person (the lines say
# why), stale sessions (Composio no longer knows them) included; 2 usage (argparse); 3 Composio
# failed for some items, which the next run retries.
EXIT_NEEDS_HUMAN = 1
EXIT_RETRY_LATER = 3


def _non_negative(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


class Command(BaseCommand):
    help = (
        "Reconcile with Composio: adopt or delete sessions Composio created that the console "
        "did not store, settle intents left pending or of unknown outcome, and retry failed "
        "deletes of superseded sessions; list the active sessions Composio no longer knows "
        "(stale). One line per item, then totals. Safe to run repeatedly and from a scheduler; "
        "concurrent runs never act twice on one item."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace-seconds",
            type=_non_negative,
            default=None,
            help="Leave pending intents (and superseded sessions not yet deleted at Composio) "
            "younger than this alone: they may still be in flight. Default: "
            "TOOL_ROUTER_OPERATION_STALE_SECONDS (600).",
        )
        parser.add_argument(
            "--settle-seconds",
            type=_non_negative,
            default=None,
            help="Leave intents of unknown outcome alone this long after their call ended, so "
            "Composio has finished acting. Default: 60.",
        )
        parser.add_argument(
            "--limit", type=_non_negative, default=500, help="At most this many items of each kind."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        grace = options["grace_seconds"]
        settle = options["settle_seconds"]
        report = reconcile.reconcile(
            grace=None if grace is None else timedelta(seconds=grace),
            settle=None if settle is None else timedelta(seconds=settle),
            limit=options["limit"],
            on_item=lambda item: self.stdout.write(item.line()),
        )
        for stale in report.stale:
            self.stdout.write(stale.line())
        self.stdout.write(report.summary())
        if report.needs_human:
            raise CommandError(
                f"{len(report.needs_human)} items need a person: "
                + " ".join(f"{i.ref}: {i.message}" for i in report.needs_human[:10]),
                returncode=EXIT_NEEDS_HUMAN,
            )
        if report.stale_total:
            raise CommandError(
                f"{report.stale_total} stale sessions need a person: refresh them.",
                returncode=EXIT_NEEDS_HUMAN,
            )
        if report.retry_later:
            raise CommandError(
                f"{len(report.retry_later)} items could not be settled because Composio failed; "
                "the next run retries them.",
                returncode=EXIT_RETRY_LATER,
            )
