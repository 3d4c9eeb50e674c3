"""PostgreSQL: print the statements that make OWNER_ROLE own every table and leave APP_ROLE only
SELECT and INSERT on the audit table; --apply runs them (connect as a superuser or the current
owner)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from sessions_app.chain.grants import BadRole, apply_grants, grant_statements


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--app-role", required=True, help="the role the console connects as")
        parser.add_argument("--owner-role", required=True, help="the role that owns the tables")
        parser.add_argument("--apply", action="store_true", help="run them in one transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("audit_grants is for PostgreSQL; SQLite has no roles.")
        try:
            statements = grant_statements(
                app_role=options["app_role"], owner_role=options["owner_role"]
            )
        except BadRole as exc:
            raise CommandError(str(exc)) from exc
        for sql in statements:
            self.stdout.write(f"{sql};")
        if options["apply"]:
            with transaction.atomic():
                apply_grants(statements)
            self.stdout.write(f"-- applied {len(statements)} statements")
