from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction

from sessions_app import roles
from sessions_app.composio.emulator import EmulatorControl, EmulatorControlError
from sessions_app.composio.emulator.canned_tools import tools_of
from sessions_app.composio.errors import ComposioError
from sessions_app.management import demo_passwords
from sessions_app.models import EndUser, Toolkit, ToolRouterSession
from sessions_app.tool_router import attention, executions, remote_check, sessions

DEMO_ACCOUNTS = [
    ("support", roles.SUPPORT, "looks users up, reveals MCP URLs"),
    ("sessionadmin", roles.SESSION_ADMIN, "creates, refreshes and deletes sessions"),
    ("auditor", roles.AUDITOR, "reads the audit trail and access reports"),
]
DEMO_ALLOWED = ["github", "gmail", "slack", "notion", "linear", "googlecalendar", "jira", "hubspot"]
FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Margaret",
    "Niklaus",
]
# The account each demo session's first toolkit gets, in turn, so the demo shows every state.
DEMO_ACCOUNT_STATES = [
    ("ACTIVE", None),
    ("ACTIVE", None),
    ("EXPIRED", "The provider's token expired"),
    ("ACTIVE", None),
    ("FAILED", "The user denied access on the connect page"),
    ("REVOKED", "Access was revoked at the provider"),
    ("INACTIVE", "Disabled through the API"),
]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Hamilton",
    "Wirth",
]


class Command(BaseCommand):
    help = (
        "Create demo staff accounts (passwords kept in settings.DEMO_PASSWORDS_PATH, printed), "
        "demo end users, a demo allow-list and demo sessions. Safe to run again: nothing is "
        "duplicated, and sessions Composio still knows are kept."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--users", type=int, default=60, help="How many demo end users.")
        parser.add_argument(
            "--no-sessions",
            action="store_true",
            help="Do not create demo sessions (by default about half the demo users get one).",
        )
        parser.add_argument(
            "--renew-passwords",
            action="store_true",
            help="Give the demo accounts new passwords (by default the kept ones are reused).",
        )

    def handle(self, *args: object, **options: object) -> None:
        path = Path(settings.DEMO_PASSWORDS_PATH)
        renew = bool(options["renew_passwords"])
        self._passwords = {} if renew else demo_passwords.load(path)
        with transaction.atomic():
            lines = self._accounts_and_users(int(options["users"]))  # type: ignore[call-overload]
            demo_passwords.save(path, self._passwords)
        # Outside any transaction: each session is a call to Composio (the emulator).
        if not options["no_sessions"]:
            self._sessions()
            self._activity()
            self._attention()
        kept = "new" if renew else "kept"
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo accounts (passwords {kept} in {path}; --renew-passwords makes new ones):"
            )
        )
        for line in lines:
            self.stdout.write("  " + line)

    def _accounts_and_users(self, count: int) -> list[str]:
        lines = []
        for username, group_name, what in DEMO_ACCOUNTS:
            lines.append(self._account(username, what, group=group_name))
        lines.append(self._account("admin", "superuser: everything", superuser=True))

        created = 0
        for i in range(count):
            first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
            _, was_created = EndUser.objects.get_or_create(
                external_id=f"usr_{i + 1:05d}",
                defaults={
                    "display_name": f"{first} {last}",
                    "email": f"{first}.{last}{i + 1}@example.com".lower(),
                },
            )
            created += was_created
        allowed = Toolkit.objects.filter(slug__in=DEMO_ALLOWED, in_catalog=True)
        allowed.update(is_allowed=True)

        self.stdout.write(f"Demo end users: {created} new, {EndUser.objects.count()} in all.")
        self.stdout.write(
            "Allowed toolkits: " + (", ".join(allowed.values_list("slug", flat=True)) or "none")
        )
        return lines

    def _sessions(self) -> None:
        """Give about half the demo users a session through the services, as an admin would."""
        allowed = list(
            Toolkit.objects.filter(slug__in=DEMO_ALLOWED, is_allowed=True, in_catalog=True)
            .order_by("slug")
            .values_list("slug", flat=True)
        )
        if not allowed:
            self.stdout.write("Demo sessions skipped: no demo toolkit is allowed (sync first).")
            return
        actor = User.objects.get(username="admin")
        demo_users = EndUser.objects.filter(external_id__startswith="usr_").order_by("external_id")
        active = {
            s.end_user_id: s
            for s in ToolRouterSession.objects.filter(status=ToolRouterSession.Status.ACTIVE)
        }
        made = kept = renewed = 0
        for index, end_user in enumerate(demo_users):
            if index % 2:
                continue
            try:
                outcome = self._demo_session(
                    index, end_user, active.get(end_user.pk), allowed, actor
                )
            except ComposioError as exc:
                outcome = str(exc)
            if outcome not in ("kept", "made", "renewed"):
                self.stdout.write(f"Demo sessions stopped after {made + renewed}: {outcome}")
                return
            kept += outcome == "kept"
            made += outcome == "made"
            renewed += outcome == "renewed"
        total = ToolRouterSession.objects.filter(status=ToolRouterSession.Status.ACTIVE).count()
        self.stdout.write(f"Demo sessions: {made} new, {total} active.")
        self.stdout.write(
            f"Demo sessions kept: {kept} Composio still knows; "
            f"renewed: {renewed} it no longer knew."
        )

    def _activity(self) -> None:
        """At the emulator only: give each demo session's first toolkit an account (in turn
        ACTIVE, EXPIRED, FAILED, REVOKED, INACTIVE) and run its tools through the services, so
        the demo has accounts and an execution log to show. A user who already has an account
        is left as is: running it again adds nothing."""
        if not executions.composio_is_emulated():
            self.stdout.write("Demo activity skipped: it is made only at the bundled emulator.")
            return
        control = EmulatorControl(settings.COMPOSIO_EMULATOR_URL)
        demo = (
            ToolRouterSession.objects.filter(
                status=ToolRouterSession.Status.ACTIVE, end_user__external_id__startswith="usr_"
            )
            .select_related("end_user")
            .order_by("end_user__external_id")
        )
        accounts = runs = failed = refused = 0
        try:
            for index, session in enumerate(demo):
                if not session.toolkits or control.accounts(session.end_user.external_id):
                    continue
                toolkit = session.toolkits[0]
                status, reason = DEMO_ACCOUNT_STATES[index % len(DEMO_ACCOUNT_STATES)]
                control.set_connection(session.session_id, toolkit, status, reason)
                accounts += 1
                for tool in tools_of(toolkit):
                    outcome = executions.tool_router_session_execute(
                        session=session, tool_slug=tool.slug, arguments={}
                    )
                    runs += outcome.ran
                    failed += outcome.ran and outcome.result_type != "completed"
                    refused += not outcome.ran
        except (EmulatorControlError, OSError) as exc:
            self.stdout.write(f"Demo activity stopped: the emulator's control API failed ({exc}).")
            return
        self.stdout.write(
            f"Demo activity: {accounts} new accounts, {runs} tool runs ({failed} failed), "
            f"{refused} refused for want of an active account."
        )

    def _attention(self) -> None:
        """Sweep the demo users once, so the support page lists the ones the demo accounts and
        failed runs above put in trouble (the task workers keep it up to date from then on)."""
        if not executions.composio_is_emulated():
            return
        report = attention.attention_sweep()
        self.stdout.write(
            f"Users needing attention: {attention.attention_count()} "
            f"({report.checked} checked now)."
        )

    def _demo_session(
        self,
        index: int,
        end_user: EndUser,
        stored: ToolRouterSession | None,
        allowed: list[str],
        actor: User,
    ) -> str:
        """What became of one demo user's session: "kept" (Composio still knows the stored one),
        "renewed" (it did not, so it was refreshed), "made" (the user had none), or why not."""
        if stored is not None:
            if remote_check.known_at_composio(stored):
                return "kept"
            result = sessions.tool_router_session_refresh(end_user=end_user, actor=actor)
            return "renewed" if result.ok else result.message
        size = 1 + index % 3
        toolkits = [allowed[(index + k) % len(allowed)] for k in range(size)]
        result = sessions.tool_router_session_create(
            end_user=end_user, toolkits=list(dict.fromkeys(toolkits)), actor=actor
        )
        return "made" if result.ok else result.message

    def _account(
        self, username: str, what: str, *, group: str | None = None, superuser: bool = False
    ) -> str:
        """Make or update one demo staff account with its kept (or a new) password."""
        password = self._passwords.get(username) or demo_passwords.new_password()
        self._passwords[username] = password
        user, _ = User.objects.get_or_create(username=username)
        user.is_staff = True
        user.is_superuser = superuser
        if not user.check_password(password):
            user.set_password(password)
        user.save()
        if group:
            user.groups.set([Group.objects.get(name=group)])
        return f"{username:<13} {password}   ({what})"
