"""The worker's periodic housekeeping: close the ended windows of coalesced refusals (their
summary events) and anchor the audit chain's head, every few minutes.

`audit_housekeeping` is a django-tasks task that re-enqueues itself to run again after
AUDIT_HOUSEKEEPING_SECONDS, so a running `db_worker` anchors the chain without cron.
`schedule()` starts that chain once: `manage.py anchor_audit --schedule` calls it (scripts/run.sh
does, before starting the workers) and does nothing while a run is already waiting or running.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks_db.models import DBTaskResult

from sessions_app import refusals
from sessions_app.chain.anchors import anchor_head


@task()
def audit_housekeeping() -> None:
    """Close the ended refusal windows, anchor the chain's head (which then covers their summary
    events), then book the next run (even if this one failed)."""
    try:
        refusals.flush()
        anchor_head()
    finally:
        _enqueue_next()


# The path django-tasks stores with each queued run of it.
TASK_PATH = audit_housekeeping.module_path


def periodic() -> bool:
    """Whether the task backend can run work later (the immediate backend runs tasks inline)."""
    return audit_housekeeping.get_backend().supports_defer


def _enqueue_next() -> None:
    if not periodic():
        return
    due = timezone.now() + timedelta(seconds=settings.AUDIT_HOUSEKEEPING_SECONDS)
    audit_housekeeping.using(run_after=due).enqueue()


def schedule() -> bool:
    """Book the first housekeeping run now, unless one is already waiting or running.

    Returns whether it booked one."""
    waiting = DBTaskResult.objects.filter(
        task_path=TASK_PATH, status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING]
    ).exists()
    if waiting or not periodic():
        return False
    audit_housekeeping.enqueue()
    return True
