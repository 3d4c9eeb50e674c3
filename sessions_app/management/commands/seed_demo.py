from __future__ import annotations

import secrets

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction

from sessions_app import roles
from sessions_app.models import EndUser, Toolkit, ToolRouterSession
from sessions_app.tool_router import sessions

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
        "Create demo staff accounts (new random passwords, printed), demo end users and a demo "
        "allow-list."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--users", type=int, default=60, help="How many demo end users.")
        parser.add_argument(
            "--no-sessions",
            action="store_true",
            help="Do not create demo sessions (by default about half the demo users get one).",
        )

    def handle(self, *args: object, **options: object) -> None:
        with transaction.atomic():
            lines = self._accounts_and_users(int(options["users"]))  # type: ignore[call-overload]
        # Outside any transaction: each session is a call to Composio (the emulator).
        if not options["no_sessions"]:
            self._sessions()
        self.stdout.write(self.style.SUCCESS("Demo accounts (passwords are new on every run):"))
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
        with_session = set(
            ToolRouterSession.objects.filter(status=ToolRouterSession.Status.ACTIVE).values_list(
                "end_user_id", flat=True
            )
        )
        made = 0
        for index, end_user in enumerate(demo_users):
            if index % 2 or end_user.pk in with_session:
                continue
            size = 1 + index % 3
            toolkits = [allowed[(index + k) % len(allowed)] for k in range(size)]
            result = sessions.tool_router_session_create(
                end_user=end_user, toolkits=list(dict.fromkeys(toolkits)), actor=actor
            )
            if not result.ok:
                self.stdout.write(f"Demo sessions stopped after {made}: {result.message}")
                return
            made += 1
        self.stdout.write(f"Demo sessions: {made} new, {len(with_session) + made} active.")

    def _account(
        self, username: str, what: str, *, group: str | None = None, superuser: bool = False
    ) -> str:
        password = secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username=username)
        user.is_staff = True
        user.is_superuser = superuser
        user.set_password(password)
        user.save()
        if group:
            user.groups.set([Group.objects.get(name=group)])
        return f"{username:<13} {password}   ({what})"
