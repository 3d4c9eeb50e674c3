"""Find the end users who need support's attention (a broken connected account, repeated failed
tool executions, a stale session) and keep what was found for the support page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings

from sessions_app import housekeeping
from sessions_app.management.sweep_command import SweepCommand
from sessions_app.models import EndUser
from sessions_app.tool_router import attention

# Exit codes: 0 done (whether or not users need attention: the page shows them); 2 usage
# (argparse, unknown --user); 3 some users could not be checked or were not reached (Composio
# failed, or the shared budget was spent), which the next run checks first.


class Command(SweepCommand):
    help = (
        "Ask Composio about each end user with an active session (their connected accounts and "
        "their failed tool executions of the last 24 hours: two reads, paid from the shared "
        "request budget), the users checked longest ago first, and keep what needs attention "
        "for the support page. One line per user, then totals. Safe to stop and run again: it "
        "continues where it stopped."
    )
    noun = "users"
    periodic_words = "sweep"
    limit_help = "Check at most this many users (default: every user with an active session)."
    user_help = "Check only this end user (external id)."
    schedule_help = (
        "Instead, make the task workers check ATTENTION_SWEEP_BATCH users every "
        "ATTENTION_SWEEP_SECONDS from now on (books the first run unless one is booked)."
    )

    def sweep(
        self, *, limit: int | None, end_user: EndUser | None, on_item: Callable[[Any], None]
    ) -> attention.SweepReport:
        return attention.attention_sweep(limit=limit, end_user=end_user, on_item=on_item)

    def totals(self, report: attention.SweepReport) -> None:
        self.stdout.write(f"{attention.attention_count()} users need attention in all.")

    def book(self) -> tuple[bool, int, int]:
        booked = housekeeping.schedule_attention()
        return booked, settings.ATTENTION_SWEEP_BATCH, settings.ATTENTION_SWEEP_SECONDS
