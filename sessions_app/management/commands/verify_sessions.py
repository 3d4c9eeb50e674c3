"""Check the stored active sessions against Composio, oldest-checked first: mark stale the ones
Composio no longer knows, leave the ones it could not be asked about for the next run."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app import housekeeping
from sessions_app.models import EndUser
from sessions_app.tool_router import drift

# Exit codes: 0 every session checked was known; 1 some are stale (a person should refresh them,
# or re-create them in bulk from the admin); 2 usage (argparse, unknown --user); 3 some could not
# be checked (Composio failed), which the next run retries.
EXIT_STALE = 1
EXIT_RETRY_LATER = 3


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


class Command(BaseCommand):
    help = (
        "Ask Composio for each stored active session (one read each, paid from the shared "
        "request budget), the ones checked longest ago first. A session Composio no longer "
        "knows is marked stale (audited as session.stale); one it could not be asked about "
        "(timeout, 5xx, 429) is not marked and comes first next run. One line per session, "
        "then totals. Safe to stop and run again: it continues where it stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit",
            type=_positive,
            default=None,
            help="Check at most this many sessions (default: all active sessions).",
        )
        parser.add_argument(
            "--user", default=None, help="Check only this end user's session (external id)."
        )
        parser.add_argument(
            "--schedule",
            action="store_true",
            help="Instead, make the task workers check DRIFT_VERIFY_BATCH sessions every "
            "DRIFT_VERIFY_SECONDS from now on (books the first run unless one is booked).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["schedule"]:
            self._schedule()
            return
        end_user = None
        if options["user"] is not None:
            end_user = EndUser.objects.filter(external_id=options["user"]).first()
            if end_user is None:
                raise CommandError(f"No end user {options['user']!r}.", returncode=2)
        report = drift.verify_sessions(
            limit=options["limit"],
            end_user=end_user,
            on_item=lambda item: self.stdout.write(item.line()),
        )
        self.stdout.write(report.summary())
        stale = drift.stale_count()
        if stale:
            self.stdout.write(
                f"{stale} active sessions are stale in all: refresh them (support card, admin) "
                "or run the admin's 're-create missing sessions' action."
            )
        if report.could_not_check or report.not_reached:
            raise CommandError(
                f"{report.could_not_check + report.not_reached} sessions could not be checked; "
                "the next run checks them first.",
                returncode=EXIT_RETRY_LATER,
            )
        if report.stale:
            raise CommandError(
                f"{report.stale} checked sessions are not known to Composio.",
                returncode=EXIT_STALE,
            )

    def _schedule(self) -> None:
        if not housekeeping.periodic():
            self.stdout.write(
                "The task backend runs tasks inline: no periodic checks; run this from cron."
            )
            return
        booked = housekeeping.schedule_drift()
        self.stdout.write(
            f"The task workers will check up to {settings.DRIFT_VERIFY_BATCH} sessions every "
            f"{settings.DRIFT_VERIFY_SECONDS} s" + ("." if booked else " (already booked).")
        )
