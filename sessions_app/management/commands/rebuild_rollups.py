"""Recompute the access report's daily rollup of grants and revocations per toolkit from the
sessions, their toolkit links and the audit trail's in-place changes (after a restore, an import
of session rows or a change made by hand). --check only compares: exit 1 if they differ."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.tool_router import rollups


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="compare with a recomputation, write nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["check"]:
            differ = rollups.differences()
            if differ:
                raise CommandError(f"The rollup differs from a recomputation on {differ} row(s).")
            self.stdout.write("The rollup equals a recomputation.")
            return
        written = rollups.rebuild()
        self.stdout.write(f"Rebuilt the daily rollup: {written} row(s).")
