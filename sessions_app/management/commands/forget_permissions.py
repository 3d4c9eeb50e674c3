"""Forget every staff user's cached permission sets (sessions_app.principals), so the next
request of each reads them from the database. Run it after changing the auth tables with raw
SQL, which no signal reports; changes made through the ORM or the admin apply at once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from sessions_app import principals


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        principals.forget_all()
        self.stdout.write("Forgot every staff user's cached permissions.")
