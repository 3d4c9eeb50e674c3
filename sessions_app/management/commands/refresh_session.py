from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from sessions_app.tool_router import sessions

from ._session_command import (
    actor_from,
    add_common_arguments,
    end_user_from,
    finish,
    parse_toolkits,
)


class Command(BaseCommand):
    help = (
        "Replace an end user's session with a new one (new id and MCP URL) and delete the old "
        "one at Composio. Without --toolkits the current toolkits are kept. Exit codes: 0 "
        "refreshed, 1 bad input/refused/failed, 3 outcome unknown, 4 skipped (no session: use "
        "create_session) or in progress."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_common_arguments(parser)
        parser.add_argument(
            "--toolkits",
            metavar="a,b",
            help="Comma-separated toolkit slugs for the new session (default: the current ones).",
        )

    def handle(self, *args: object, **options: object) -> None:
        actor = actor_from(options["actor"])  # type: ignore[arg-type]
        end_user = end_user_from(str(options["external_id"]))
        raw = options["toolkits"]
        toolkits = parse_toolkits(str(raw)) if raw is not None else None
        result = sessions.tool_router_session_refresh(
            end_user=end_user, toolkits=toolkits, actor=actor
        )
        self.stdout.write(self.style.SUCCESS(finish(result)))
