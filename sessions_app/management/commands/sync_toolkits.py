from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from sessions_app.tool_router import errors, health, toolkit_catalog


class Command(BaseCommand):
    help = (
        "Mirror Composio's whole toolkit catalog into the console (new toolkits start not allowed)."
    )

    def handle(self, *args: object, **options: object) -> None:
        show_progress = sys.stderr.isatty() or int(options.get("verbosity", 1)) > 1

        def progress(done: int, total: int) -> None:
            if show_progress:
                self.stderr.write(f"\rRead {done}/{total} toolkits", ending="")

        where = "the Composio emulator" if health.composio_is_emulated() else "Composio"
        self.stdout.write(f"Reading the toolkit catalog from {where}...")
        try:
            result = toolkit_catalog.toolkit_catalog_sync(progress=progress)
        except errors.ComposioError as exc:
            raise CommandError(f"Catalog sync failed, nothing was changed: {exc.message}") from None
        if show_progress:
            self.stderr.write("")
        self.stdout.write(self.style.SUCCESS(result.summary()))
        for label, slugs in (
            ("New (not allowed until an admin allows them)", result.added),
            ("Updated", result.updated),
            ("Back in the catalog", result.returned),
            ("No longer in Composio's catalog", result.vanished),
        ):
            if slugs:
                shown = sorted(slugs)[:30]
                more = f" and {len(slugs) - len(shown)} more" if len(slugs) > len(shown) else ""
                self.stdout.write(f"{label}: {', '.join(shown)}{more}")
