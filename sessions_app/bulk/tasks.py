"""Background tasks (django-tasks). Arguments are ids and tokens only: never a secret."""

from __future__ import annotations

from django_tasks import task


@task()
def bulk_job_run(job_id: int, slot: int, token: str) -> str:
    """Run one slot of a bulk job for a while (see `sessions_app.bulk.jobs`)."""
    from sessions_app.bulk import jobs as bulk

    return bulk.bulk_job_run_slot(job_id=job_id, slot=slot, token=token)
