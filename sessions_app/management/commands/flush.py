"""Django's `flush`, able to empty the append-only audit table of a TEST database only.

The audit triggers refuse DELETE; test runners flush between transactional tests, so the flag the
SQLite trigger consults is raised for the duration, and only when the database is a test one.
(On PostgreSQL the trigger allows TRUNCATE in databases named test_*, which is what flush runs.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.commands import flush
from django.db import connections

from sessions_app import trail


def _is_test_database(alias: str) -> bool:
    connection = connections[alias]
    name = str(connection.settings_dict.get("NAME") or "")
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        return True
    return Path(name).name.startswith("test_")


class Command(flush.Command):
    def handle(self, **options: Any) -> None:
        if _is_test_database(options["database"]):
            with trail.erasable_for_test_flush():
                return super().handle(**options)
        return super().handle(**options)
