"""Find the end users who need support's attention (a broken connected account, repeated failed
tool executions, a stale session) and keep what was found for the support page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app import housekeeping
from sessions_app.models import EndUser
from sessions_app.tool_router import attention

# Exit codes: 0 done (whether or not users need attention: the page shows them); 2 usage
# (argparse, unknown --user); 3 some users could not be checked or were not reached (Composio
# failed, or the shared budget was spent), which the next run checks first.
EXIT_RETRY_LATER = 3


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


class Command(BaseCommand):
    help = (
        "Ask Composio about each end user with an active session (their connected accounts and "
        "their failed tool executions of the last 24 hours: two reads, paid from the shared "
        "request budget), the users checked longest ago first, and keep what needs attention "
        "for the support page. One line per user, then totals. Safe to stop and run again: it "
        "continues where it stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit",
            type=_positive,
            default=None,
            help="Check at most this many users (default: every user with an active session).",
        )
        parser.add_argument("--user", default=None, help="Check only this end user (external id).")
        parser.add_argument(
            "--schedule",
            action="store_true",
            help="Instead, make the task workers check ATTENTION_SWEEP_BATCH users every "
            "ATTENTION_SWEEP_SECONDS from now on (books the first run unless one is booked).",
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
        report = attention.attention_sweep(
            limit=options["limit"],
            end_user=end_user,
            on_item=lambda item: self.stdout.write(item.line()),
        )
        self.stdout.write(report.summary())
        self.stdout.write(f"{attention.attention_count()} users need attention in all.")
        if report.could_not_check or report.not_reached:
            raise CommandError(
                f"{report.could_not_check + report.not_reached} users could not be checked; "
                "the next run checks them first.",
                returncode=EXIT_RETRY_LATER,
            )

    def _schedule(self) -> None:
        if not housekeeping.periodic():
            self.stdout.write(
                "The task backend runs tasks inline: no periodic sweep; run this from cron."
            )
            return
        booked = housekeeping.schedule_attention()
        self.stdout.write(
            f"The task workers will check up to {settings.ATTENTION_SWEEP_BATCH} users every "
            f"{settings.ATTENTION_SWEEP_SECONDS} s" + ("." if booked else " (already booked).")
        )
