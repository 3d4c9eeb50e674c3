from __future__ import annotations

from django.core.management.base import CommandError

from sessions_app.tool_router import selectors, sessions

from ._session_command import EXIT_SKIPPED, Asked, SessionCommand, end_user_from


class Command(SessionCommand):
    help = (
        "Delete an end user's active session at Composio and mark it deleted (the record is "
        "kept). Exit codes: 0 deleted, 1 bad input/refused/failed, 3 outcome unknown, 4 no "
        "active session or in progress."
    )

    def run(self, asked: Asked) -> sessions.SessionResult:
        end_user = end_user_from(asked.external_id)
        session = selectors.active_session(end_user=end_user)
        if session is None:
            raise CommandError(
                f"{end_user.external_id} has no active session; nothing was changed.",
                returncode=EXIT_SKIPPED,
            )
        return sessions.tool_router_session_delete(session=session, actor=asked.actor)
