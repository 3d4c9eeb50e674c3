"""Bulk jobs: create or refresh the sessions of many end users in background workers.

The services here start, cancel, retry and resume jobs, and say who may see and run them. A job
has one item per end user; `sessions_app.bulk.runner` works through the items in background
workers and `sessions_app.bulk.settle` says what becomes of each; `sessions_app.bulk.progress`
reads how far a job has got.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import ngettext

from sessions_app import access
from sessions_app.bulk import runner
from sessions_app.bulk.progress import concurrency, duration_words, expected_seconds
from sessions_app.bulk.settle import finish_if_done, record_job_event, skip_pending
from sessions_app.models import AuditEvent, BulkJob, BulkJobItem, EndUser
from sessions_app.tool_router import rate_limit, toolkit_catalog

Item = BulkJobItem.State

# Items written per query when a job starts (a job may hold tens of thousands of users).
_ITEM_BATCH = 2000


# --- Who may do what -------------------------------------------------------------------------


SEE_JOBS_PERMISSIONS = ("sessions_app.view_enduser", "sessions_app.create_session")


def job_permission(kind: str) -> str:
    """The session permission a job of this kind needs: its session service's (re-creating a
    missing session is a refresh)."""
    operation = BulkJob.Kind.REFRESH if kind == BulkJob.Kind.RECREATE else kind
    return access.SESSION_PERMISSION[operation]


def may_see_jobs(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Session admins: the console's view permission and one of the two bulk operations."""
    return bool(
        user.is_active
        and user.has_perm("sessions_app.view_enduser")
        and (
            user.has_perm(access.SESSION_PERMISSION[BulkJob.Kind.CREATE])
            or user.has_perm(access.SESSION_PERMISSION[BulkJob.Kind.REFRESH])
        )
    )


def may_run(user: AbstractBaseUser | AnonymousUser | None, kind: str) -> bool:
    """Whether `user` may start, cancel or retry a job of this kind (its session permission)."""
    return user is not None and access.may(user, job_permission(kind))


def _require_may_run(
    actor: AbstractBaseUser | AnonymousUser,
    request: HttpRequest | None,
    *,
    kind: str,
    operation: str,
    job: BulkJob | None,
) -> None:
    """Raise `access.Refused` (audited as `bulk.<first word of operation>`) unless `actor` may
    run jobs of this kind."""
    if may_run(actor, kind):
        return
    permission = job_permission(kind)
    raise access.refuse(
        operation=f"bulk.{operation.split()[0]}",
        reason=f"You may not {operation}: it needs {permission}.",
        actor=actor,
        request=request,
        missing=[permission],
        target=str(job.public_id) if job is not None else "",
    )


# --- Starting ----------------------------------------------------------------------------------


def bulk_job_start(
    *,
    kind: str,
    end_users: QuerySet[EndUser],
    toolkits: Sequence[str] | None,
    actor: AbstractBaseUser | AnonymousUser,
    request: HttpRequest | None = None,
) -> BulkJob:
    """Start a background job that creates or refreshes the session of each of `end_users`, or
    (`recreate`) refreshes only those whose session Composio no longer knows.

    `toolkits=None` (refresh and recreate) keeps each user's current toolkits. Checks the permission
    (PermissionDenied, audited) and validates the toolkits with the same validator as every
    other path (ValidationError, audited as rejected input) before writing anything. Writes the
    job, one item per end user and a `bulk.start` audit event in one transaction, then hands the
    work to the task queue.
    """
    kind = BulkJob.Kind(kind)
    _require_may_run(actor, request, kind=kind, operation=f"{kind} sessions in bulk", job=None)
    slugs = _clean_toolkits(kind, toolkits, actor=actor, request=request)
    with runner.arming() as arm:
        job = BulkJob.objects.create(
            kind=kind,
            toolkits=slugs,
            started_by=actor if actor.is_authenticated else None,
            started_by_username=actor.get_username() if actor.is_authenticated else "",
            concurrency=concurrency(),
            rate_per_minute=int(rate_limit.rate_per_minute()),
        )
        job.total = _write_items(job, end_users)
        if job.total == 0:
            raise ValidationError("No end users were selected.", code="empty")
        job.save(update_fields=["total"])
        _audit_start(job, actor=actor, request=request)
        arm(job)
    job.refresh_from_db()
    return job


def _clean_toolkits(
    kind: str,
    toolkits: Sequence[str] | None,
    *,
    actor: AbstractBaseUser | AnonymousUser,
    request: HttpRequest | None,
) -> list[str] | None:
    """The toolkit slugs the job's sessions get (None: keep each user's), or ValidationError
    (a rejected list is audited as `input.rejected`)."""
    if toolkits is None and kind == BulkJob.Kind.CREATE:
        raise ValidationError("Choose the toolkits the new sessions get.", code="required")
    if toolkits is None:
        return None
    return toolkit_catalog.toolkit_choices_checked(
        toolkits,
        refused="No bulk job was started",
        operation=f"bulk.{kind}",
        actor=actor,
        request=request,
    )


def _write_items(job: BulkJob, end_users: QuerySet[EndUser]) -> int:
    """One pending item per distinct end user, written in batches; returns how many."""
    pks = end_users.order_by("pk").values_list("pk", flat=True).distinct()
    total = 0
    batch: list[BulkJobItem] = []
    for pk in pks.iterator(chunk_size=_ITEM_BATCH):
        batch.append(BulkJobItem(job=job, end_user_id=pk))
        if len(batch) == _ITEM_BATCH:
            BulkJobItem.objects.bulk_create(batch)
            total += len(batch)
            batch = []
    BulkJobItem.objects.bulk_create(batch)
    return total + len(batch)


def _audit_start(
    job: BulkJob,
    *,
    actor: AbstractBaseUser | AnonymousUser,
    request: HttpRequest | None,
    retry: int = 0,
) -> None:
    """Audit `bulk.start`: a new job, or one started again to retry `retry` failed items."""
    if retry:
        items = ngettext("%(n)d failed item", "%(n)d failed items", retry) % {"n": retry}
        reason = f"Retrying {items} of a background {job.kind} job."
        details: dict[str, object] = {"retry": retry}
    else:
        estimate = expected_seconds(kind=job.kind, count=job.total)
        reason = (
            f"Started a background job to {job.kind} the sessions of "
            + ngettext("%(n)d end user", "%(n)d end users", job.total) % {"n": job.total}
            + f" (about {duration_words(estimate)} at {job.rate_per_minute} requests/minute)."
        )
        details = {
            "total": job.total,
            "toolkits": job.toolkits,
            "keep_current_toolkits": job.toolkits is None,
            "concurrency": job.concurrency,
            "rate_per_minute": job.rate_per_minute,
            "expected_seconds": round(estimate),
        }
    record_job_event(
        job,
        details,
        action="bulk.start",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        request=request,
        reason=reason,
    )


# --- Cancelling, retrying, resuming ------------------------------------------------------------


def bulk_job_cancel(
    *, job: BulkJob, actor: AbstractBaseUser | AnonymousUser, request: HttpRequest | None = None
) -> int:
    """Stop a job: items not started yet become `skipped`; items in flight finish. Returns how
    many were skipped. The job ends as `cancelled` (and `bulk.end` is written) once nothing is
    in flight."""
    _require_may_run(actor, request, kind=job.kind, operation="cancel", job=job)
    name = actor.get_username()
    with transaction.atomic():
        locked = BulkJob.objects.select_for_update().get(pk=job.pk)
        if locked.ended:
            raise ValidationError("The job has already ended.", code="ended")
        locked.state = BulkJob.State.CANCELLING
        locked.cancelled_by_username = name
        locked.save(update_fields=["state", "cancelled_by_username"])
        skipped = skip_pending(locked)
    finish_if_done(job.pk)
    job.refresh_from_db()
    return skipped


def bulk_job_retry_failed(
    *, job: BulkJob, actor: AbstractBaseUser | AnonymousUser, request: HttpRequest | None = None
) -> int:
    """Send the `failed` items again (never `unknown` ones: Composio may have acted on those).

    Only once the job has ended; the job runs again and writes `bulk.start`/`bulk.end` again.
    Returns how many items were re-queued.
    """
    _require_may_run(actor, request, kind=job.kind, operation="retry failed items", job=job)
    with runner.arming() as arm:
        locked = BulkJob.objects.select_for_update().get(pk=job.pk)
        if not locked.ended:
            raise ValidationError(
                "Failed items can be retried once the job has ended.", code="running"
            )
        count = locked.items.filter(state=Item.FAILED).update(
            state=Item.PENDING, attempts=0, not_before=None, finished_at=None, runner=""
        )
        if not count:
            return 0
        locked.state = BulkJob.State.RUNNING
        locked.finished_at = None
        locked.paused_until = None
        locked.cancelled_by_username = ""
        locked.save(update_fields=["state", "finished_at", "paused_until", "cancelled_by_username"])
        _audit_start(locked, actor=actor, request=request, retry=count)
        arm(locked)
    job.refresh_from_db()
    return count


def bulk_jobs_resume() -> list[BulkJob]:
    """Re-arm every slot of every job still running (after workers were restarted).

    New tokens make any runner still alive somewhere stop at its next step; items whose worker
    died are settled from their leases. The stand-in tasks would do the same, only later.
    """
    jobs = list(BulkJob.objects.filter(state__in=[BulkJob.State.RUNNING, BulkJob.State.CANCELLING]))
    for job in jobs:
        with runner.arming() as arm:
            arm(job)
    return jobs
