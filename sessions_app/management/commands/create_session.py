from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from sessions_app.tool_router import end_users, sessions, toolkit_catalog

from ._session_command import EXIT_FAILED, Asked, SessionCommand, checked_external_id, end_user_from


class Command(SessionCommand):
    help = (
        "Create a Tool Router session for one end user with exactly these toolkits. "
        "Exit codes: 0 created, 1 bad input/refused/failed, 3 outcome unknown, 4 skipped "
        "(already has a session: use refresh_session) or in progress."
    )
    toolkits_help = "Comma-separated toolkit slugs: allowed, in the catalog, lower-case."
    toolkits_required = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--create-user",
            action="store_true",
            help="Create the end user first if there is none with this external id.",
        )

    def run(self, asked: Asked) -> sessions.SessionResult:
        external_id = checked_external_id(asked.external_id)
        # Checked before the end user is created, so bad input changes nothing.
        refused = f"Nothing was changed for {external_id}"
        try:
            toolkits = toolkit_catalog.toolkit_choices_checked(
                asked.toolkits or [],
                refused=refused,
                operation="create",
                actor=asked.actor,
                end_users=[external_id],
            )
        except ValidationError as error:
            message = f"{refused}: {toolkit_catalog.validation_message(error)}"
            raise CommandError(message, returncode=EXIT_FAILED) from None
        if asked.options["create_user"]:
            end_user, created = end_users.end_user_get_or_create(external_id=external_id)
            if created:
                self.stdout.write(f"Created end user {external_id}.")
        else:
            end_user = end_user_from(external_id)
        return sessions.tool_router_session_create(
            end_user=end_user, toolkits=toolkits, actor=asked.actor
        )
