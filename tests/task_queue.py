"""Running queued django-tasks inside the test process (the database backend, no worker)."""

from __future__ import annotations


def run_queue_once() -> None:
    """Run every task that is due, in this process, as `db_worker --batch` does (its loop also
    closes old connections, which would end the test's transaction)."""
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    worker = Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
    while (task := DBTaskResult.objects.ready().first()) is not None:
        task.claim(worker.worker_id)
        worker.run_task(task)
