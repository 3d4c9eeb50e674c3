"""The task's import path from before it moved beside its runner (`sessions_app.bulk.runner`).

django-tasks stores a task's import path with each queued job, so jobs queued under this path
still find the task here. Nothing imports from here: import `runner.bulk_job_run`.
"""

from __future__ import annotations

from sessions_app.bulk.runner import bulk_job_run

__all__ = ["bulk_job_run"]
