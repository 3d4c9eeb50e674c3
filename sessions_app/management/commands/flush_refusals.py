"""Append one summary access.refused event for each ended window of coalesced refusals (the count
beyond its first, already written event). Run it every minute or few; --all closes the windows
still open too."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sessions_app import refusals


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="also close the windows that have not ended yet"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        written = refusals.close_windows() if options["all"] else refusals.flush()
        self.stdout.write(f"Wrote {written} summary access.refused event(s).")
