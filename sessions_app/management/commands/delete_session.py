from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.models import ToolRouterSession
from sessions_app.tool_router import sessions

from ._session_command import (
    EXIT_SKIPPED,
    actor_from,
    add_common_arguments,
    end_user_from,
    finish,
)


class Command(BaseCommand):
    help = (
        "Delete an end user's active session at Composio and mark it deleted (the record is "
        "kept). Exit codes: 0 deleted, 1 bad input/refused/failed, 3 outcome unknown, 4 no "
        "active session or in progress."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_common_arguments(parser)

    def handle(self, *args: object, **options: object) -> None:
        actor = actor_from(options["actor"])  # type: ignore[arg-type]
        end_user = end_user_from(str(options["external_id"]))
        session = ToolRouterSession.objects.filter(
            end_user=end_user, status=ToolRouterSession.Status.ACTIVE
        ).first()
        if session is None:
            raise CommandError(
                f"{end_user.external_id} has no active session; nothing was changed.",
                returncode=EXIT_SKIPPED,
            )
        result = sessions.tool_router_session_delete(session=session, actor=actor)
        self.stdout.write(self.style.SUCCESS(finish(result)))
