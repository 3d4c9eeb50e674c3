"""Check the stored active sessions against Composio, oldest-checked first: mark stale the ones
Composio no longer knows, leave the ones it could not be asked about for the next run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError

from sessions_app import housekeeping
from sessions_app.management.sweep_command import SweepCommand
from sessions_app.models import EndUser
from sessions_app.tool_router import drift

# Exit codes: 0 every session checked was known; 1 some are stale (a person should refresh them,
# or re-create them in bulk from the admin); 2 usage (argparse, unknown --user); 3 some could not
# be checked (Composio failed), which the next run retries.
EXIT_STALE = 1


class Command(SweepCommand):
    help = (
        "Ask Composio for each stored active session (one read each, paid from the shared "
        "request budget), the ones checked longest ago first. A session Composio no longer "
        "knows is marked stale (audited as session.stale); one it could not be asked about "
        "(timeout, 5xx, 429) is not marked and comes first next run. One line per session, "
        "then totals. Safe to stop and run again: it continues where it stopped."
    )
    noun = "sessions"
    limit_help = "Check at most this many sessions (default: all active sessions)."
    user_help = "Check only this end user's session (external id)."
    schedule_help = (
        "Instead, make the task workers check DRIFT_VERIFY_BATCH sessions every "
        "DRIFT_VERIFY_SECONDS from now on (books the first run unless one is booked)."
    )

    def sweep(
        self, *, limit: int | None, end_user: EndUser | None, on_item: Callable[[Any], None]
    ) -> drift.VerifyReport:
        return drift.verify_sessions(limit=limit, end_user=end_user, on_item=on_item)

    def totals(self, report: drift.VerifyReport) -> None:
        stale = drift.stale_count()
        if stale:
            self.stdout.write(
                f"{stale} active sessions are stale in all: refresh them (support card, admin) "
                "or run the admin's 're-create missing sessions' action."
            )

    def verdict(self, report: drift.VerifyReport) -> None:
        if report.stale:
            raise CommandError(
                f"{report.stale} checked sessions are not known to Composio.",
                returncode=EXIT_STALE,
            )

    def book(self) -> tuple[bool, int, int]:
        booked = housekeeping.schedule_drift()
        return booked, settings.DRIFT_VERIFY_BATCH, settings.DRIFT_VERIFY_SECONDS
