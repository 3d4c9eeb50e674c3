"""The task's oldest import path. django-tasks stores a task's import path with each queued job,
so jobs queued before the move to `sessions_app.bulk.runner` still find it here."""

from __future__ import annotations

from sessions_app.bulk.runner import bulk_job_run

__all__ = ["bulk_job_run"]
