"""The shape the resumable sweeps' commands share (`verify_sessions`, `sweep_attention`):
`--limit N`, `--user ID`, `--schedule`; one line per item as it comes, then the totals; exit 3
when some items could not be checked or were not reached (the next run checks them first), 2 on
usage (argparse, an unknown --user)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app import housekeeping
from sessions_app.models import EndUser
from sessions_app.tool_router import sweeps

EXIT_RETRY_LATER = 3


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


class SweepCommand(BaseCommand):
    noun = "items"  # what one line is about, plural: "sessions", "users"
    limit_help = user_help = schedule_help = ""
    periodic_words = "checks"  # "The task backend runs tasks inline: no periodic <these>"

    def sweep(
        self, *, limit: int | None, end_user: EndUser | None, on_item: Callable[[Any], None]
    ) -> Any:
        raise NotImplementedError

    def totals(self, report: Any) -> None:
        """Lines after the summary."""

    def verdict(self, report: Any) -> None:
        """An exit code of the sweep's own once every item was checked (raise CommandError)."""

    def book(self) -> tuple[bool, int, int]:
        """Book the periodic run: (booked now, items per run, seconds between runs)."""
        raise NotImplementedError

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=_positive, default=None, help=self.limit_help)
        parser.add_argument("--user", default=None, help=self.user_help)
        parser.add_argument("--schedule", action="store_true", help=self.schedule_help)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["schedule"]:
            self._schedule()
            return
        end_user = None
        if options["user"] is not None:
            end_user = EndUser.objects.filter(external_id=options["user"]).first()
            if end_user is None:
                raise CommandError(f"No end user {options['user']!r}.", returncode=2)
        report: sweeps.SweepRun[Any] = self.sweep(
            limit=options["limit"],
            end_user=end_user,
            on_item=lambda item: self.stdout.write(item.line()),
        )
        self.stdout.write(report.summary())
        self.totals(report)
        left = report.could_not_check + report.not_reached
        if left:
            raise CommandError(
                f"{left} {self.noun} could not be checked; the next run checks them first.",
                returncode=EXIT_RETRY_LATER,
            )
        self.verdict(report)

    def _schedule(self) -> None:
        if not housekeeping.periodic():
            self.stdout.write(
                f"The task backend runs tasks inline: no periodic {self.periodic_words}; "
                "run this from cron."
            )
            return
        booked, batch, seconds = self.book()
        self.stdout.write(
            f"The task workers will check up to {batch} {self.noun} every {seconds} s"
            + ("." if booked else " (already booked).")
        )
