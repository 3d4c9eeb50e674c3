"""The worker's periodic housekeeping: close the ended windows of coalesced refusals (their
summary events) and anchor the audit chain's head, every few minutes; and check the stored
sessions against Composio (drift), every DRIFT_VERIFY_SECONDS.

`audit_housekeeping` is a django-tasks task that re-enqueues itself to run again after
AUDIT_HOUSEKEEPING_SECONDS, so a running `db_worker` anchors the chain without cron.
`schedule()` starts that chain once: `manage.py anchor_audit --schedule` calls it (scripts/run.sh
does, before starting the workers) and does nothing while a run is already waiting or running.
`session_drift_verify` and `schedule_drift()` (`manage.py verify_sessions --schedule`) do the same
for `tool_router.drift.verify_sessions`, DRIFT_VERIFY_BATCH sessions per run, and
`attention_sweep` and `schedule_attention()` (`manage.py sweep_attention --schedule`) for
`tool_router.attention.attention_sweep`, ATTENTION_SWEEP_BATCH users every ATTENTION_SWEEP_SECONDS.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks.base import Task
from django_tasks_db.models import DBTaskResult

from sessions_app import refusals
from sessions_app.chain.anchors import anchor_head
from sessions_app.tool_router import attention, drift


@task()
def audit_housekeeping() -> None:
    """Close the ended refusal windows, anchor the chain's head (which then covers their summary
    events), then book the next run (even if this one failed)."""
    try:
        refusals.flush()
        anchor_head()
    finally:
        _enqueue_next(audit_housekeeping, settings.AUDIT_HOUSEKEEPING_SECONDS)


@task()
def session_drift_verify() -> None:
    """Check the DRIFT_VERIFY_BATCH sessions checked longest ago against Composio (paid from the
    shared budget; a stopped run is continued by the next), then book the next run."""
    try:
        drift.verify_sessions(limit=max(1, settings.DRIFT_VERIFY_BATCH))
    finally:
        _enqueue_next(session_drift_verify, settings.DRIFT_VERIFY_SECONDS)


@task()
def attention_sweep() -> None:
    """Check the ATTENTION_SWEEP_BATCH users checked longest ago for what needs support's
    attention (paid from the shared budget; a stopped run is continued by the next), then book
    the next run."""
    try:
        attention.attention_sweep(limit=max(1, settings.ATTENTION_SWEEP_BATCH))
    finally:
        _enqueue_next(attention_sweep, settings.ATTENTION_SWEEP_SECONDS)


# The path django-tasks stores with each queued run of them.
TASK_PATH = audit_housekeeping.module_path
DRIFT_TASK_PATH = session_drift_verify.module_path
ATTENTION_TASK_PATH = attention_sweep.module_path


def periodic() -> bool:
    """Whether the task backend can run work later (the immediate backend runs tasks inline)."""
    return audit_housekeeping.get_backend().supports_defer


def _enqueue_next(periodic_task: Task, seconds: int) -> None:
    if not periodic():
        return
    due = timezone.now() + timedelta(seconds=seconds)
    periodic_task.using(run_after=due).enqueue()


def _schedule(periodic_task: Task) -> bool:
    runs = DBTaskResult.objects.filter(task_path=periodic_task.module_path)
    now = timezone.now()
    # A worker killed mid-run leaves its row RUNNING forever, which would block the chain for good.
    runs.filter(
        status=TaskResultStatus.RUNNING,
        started_at__lt=now - timedelta(seconds=settings.PERIODIC_TASK_DEAD_AFTER_SECONDS),
    ).update(
        status=TaskResultStatus.FAILED,
        finished_at=now,
        exception_class_path="sessions_app.housekeeping.WorkerLost",
        traceback="Still running after PERIODIC_TASK_DEAD_AFTER_SECONDS: its worker was lost.",
    )
    waiting = runs.filter(status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING]).exists()
    if waiting or not periodic():
        return False
    periodic_task.enqueue()
    return True


def schedule() -> bool:
    """Book the first housekeeping run now, unless one is already waiting or running.

    Returns whether it booked one."""
    return _schedule(audit_housekeeping)


def schedule_drift() -> bool:
    """Book the first drift check now, unless one is already waiting or running.

    Returns whether it booked one."""
    return _schedule(session_drift_verify)


def schedule_attention() -> bool:
    """Book the first attention sweep now, unless one is already waiting or running.

    Returns whether it booked one."""
    return _schedule(attention_sweep)
