"""Re-arm every bulk job still running, e.g. after the workers were stopped or killed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from sessions_app.bulk import jobs as bulk


class Command(BaseCommand):
    help = (
        "Give every running bulk job fresh runner tasks, so restarted workers resume it at once "
        "(without this they do after BULK_DEADMAN_SECONDS)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        jobs = bulk.bulk_jobs_resume()
        for job in jobs:
            self.stdout.write(f"Resumed {job.public_id}: {job}")
        if not jobs:
            self.stdout.write("No bulk job is running.")
