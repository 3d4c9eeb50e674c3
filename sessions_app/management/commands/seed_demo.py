from __future__ import annotations

import secrets

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction

from sessions_app import roles
from sessions_app.models import EndUser, Toolkit

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

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        lines = []
        for username, group_name, what in DEMO_ACCOUNTS:
            lines.append(self._account(username, what, group=group_name))
        lines.append(self._account("admin", "superuser: everything", superuser=True))

        count = int(options["users"])
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
        self.stdout.write(self.style.SUCCESS("Demo accounts (passwords are new on every run):"))
        for line in lines:
            self.stdout.write("  " + line)

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
