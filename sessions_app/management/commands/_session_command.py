"""What the session commands share: finding the actor and the end user, exit codes."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.models import EndUser
from sessions_app.tool_router import sessions
from sessions_app.validators import external_id_problem

# Exit codes: 0 done; 1 bad input, refused or failed (nothing changed); 2 usage (argparse);
# 3 Composio may have acted (outcome unknown, recorded for reconciliation);
# 4 nothing to do (skipped) or another change to this user is in progress.
EXIT_FAILED = 1
EXIT_UNKNOWN = 3
EXIT_SKIPPED = 4

_EXIT = {
    sessions.Outcome.FAILED: EXIT_FAILED,
    sessions.Outcome.REFUSED: EXIT_FAILED,
    sessions.Outcome.UNKNOWN: EXIT_UNKNOWN,
    sessions.Outcome.SKIPPED: EXIT_SKIPPED,
    sessions.Outcome.IN_PROGRESS: EXIT_SKIPPED,
}


def add_common_arguments(parser: CommandParser) -> None:
    parser.add_argument("external_id", help="The end user's external id (Composio user_id).")
    parser.add_argument(
        "--actor",
        metavar="USERNAME",
        help="Act as this staff account: its permissions are checked and it is named in the "
        "audit trail. Without it the command acts as the system (whoever runs it has shell "
        "access to the server).",
    )


def parse_toolkits(raw: str) -> list[str]:
    """`a,b` -> ["a", "b"]: spaces around commas are dropped; everything else is validated."""
    return [part.strip() for part in raw.split(",")]


def actor_from(username: str | None) -> AbstractBaseUser | None:
    if username is None:
        return None
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"No active staff account named {username!r}.", returncode=EXIT_FAILED)
    return user


def checked_external_id(external_id: str) -> str:
    problem = external_id_problem(external_id)
    if problem is not None:
        raise CommandError(problem + " Nothing was changed.", returncode=EXIT_FAILED)
    return external_id


def end_user_from(external_id: str) -> EndUser:
    user = EndUser.objects.filter(external_id=checked_external_id(external_id)).first()
    if user is None:
        raise CommandError(
            f"No end user with external id {external_id!r}. Nothing was changed.",
            returncode=EXIT_FAILED,
        )
    return user


def finish(result: sessions.SessionResult) -> str:
    """The success line, or a CommandError with the service's message and an exit code."""
    if result.ok:
        return result.message
    raise CommandError(result.message, returncode=_EXIT.get(result.outcome, EXIT_FAILED))


@dataclass(frozen=True)
class Asked:
    """What the command line asked for."""

    actor: AbstractBaseUser | None
    external_id: str
    toolkits: list[str] | None
    options: dict[str, object]


class SessionCommand(BaseCommand):
    """A session service from the shell: find the actor, call the service, exit with its outcome."""

    # The --toolkits option's help; None: the command takes no toolkits.
    toolkits_help: str | None = None
    toolkits_required = False

    def add_arguments(self, parser: CommandParser) -> None:
        add_common_arguments(parser)
        if self.toolkits_help is not None:
            parser.add_argument(
                "--toolkits",
                required=self.toolkits_required,
                metavar="a,b",
                help=self.toolkits_help,
            )

    def handle(self, *args: object, **options: object) -> None:
        actor = actor_from(options["actor"])  # type: ignore[arg-type]
        raw = options.get("toolkits")
        toolkits = parse_toolkits(str(raw)) if raw is not None else None
        asked = Asked(actor, str(options["external_id"]), toolkits, options)
        result = self.run(asked)
        self.stdout.write(self.style.SUCCESS(finish(result)))

    def run(self, asked: Asked) -> sessions.SessionResult:
        raise NotImplementedError
