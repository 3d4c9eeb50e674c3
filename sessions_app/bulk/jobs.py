"""Bulk jobs: create or refresh the sessions of many end users in background workers.

A job has one item per end user. `bulk_job_start` writes them and arms `concurrency` runner
slots; each slot is a chain of `sessions_app.bulk.tasks.bulk_job_run` tasks (django-tasks)
that claim items one at a time (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL) and call the
session services, which keep their promises: one intent and one audit event per attempt, the
per-user lock, never a blind re-send of a create that may have reached Composio.

What each outcome does to an item:
- success -> `succeeded` (with the new session); the service skipped the user, or the user was
  locked by another change in progress -> `skipped`, with the reason;
- 429 -> the WHOLE job pauses for Retry-After (no runner sends anything), the item is retried;
- Composio unavailable (503, connection refused) -> retried with exponential backoff, `failed`
  after BULK_MAX_ATTEMPTS calls;
- 400/401/403/404/422, bad toolkits, permission -> `failed` (permanent; "Retry failed" re-queues);
- a create that may have reached Composio (timeout, 500, broken answer) -> `unknown`: never
  re-sent by the job, left to reconciliation.

Surviving a killed worker: every item a runner works on carries a lease. A runner that starts
rotates its slot's token and enqueues a stand-in for the same slot (a dead man's switch, run
after BULK_DEADMAN_SECONDS); a live runner hands off to a fresh task every BULK_SLICE_SECONDS,
which makes the stand-in obsolete. If the worker dies, the stand-in takes over the slot when
workers run again, and an item whose lease expired is settled from its session intent: no intent
-> never sent, pending again; intent succeeded -> `succeeded`; intent pending or unknown ->
`unknown`. So items already succeeded are never sent again.
"""

from __future__ import annotations

import csv
import logging
import math
import random
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Min, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from sessions_app.audit import log as audit
from sessions_app.models import (
    AuditEvent,
    BulkJob,
    BulkJobItem,
    EndUser,
    SessionOperation,
    ToolRouterSession,
)
from sessions_app.tool_router import rate_limit, services

logger = logging.getLogger(__name__)

Item = BulkJobItem.State
ACTIVE_ITEM_STATES = (Item.PENDING, Item.RUNNING)
TERMINAL_ITEM_STATES = (Item.SUCCEEDED, Item.FAILED, Item.UNKNOWN, Item.SKIPPED)

_PERMISSION = {
    BulkJob.Kind.CREATE: "sessions_app.create_session",
    BulkJob.Kind.REFRESH: "sessions_app.refresh_session",
}
# Requests one item sends to Composio: a refresh creates the new session, then deletes the old.
_REQUESTS_PER_ITEM = {BulkJob.Kind.CREATE: 1, BulkJob.Kind.REFRESH: 2}
_AUDIT_ACTION = {BulkJob.Kind.CREATE: "session.create", BulkJob.Kind.REFRESH: "session.refresh"}


# --- Settings ----------------------------------------------------------------------------------


def concurrency() -> int:
    """Runner slots per job: at most this many items of one job are in flight at once."""
    return max(1, int(settings.BULK_CONCURRENCY))


def max_attempts() -> int:
    return max(1, int(settings.BULK_MAX_ATTEMPTS))


def _lease() -> timedelta:
    return timedelta(seconds=settings.BULK_LEASE_SECONDS)


def _slice_seconds() -> float:
    return float(settings.BULK_SLICE_SECONDS)


def _deadman() -> timedelta:
    return timedelta(seconds=settings.BULK_DEADMAN_SECONDS)


def _backoff(attempts: int) -> float:
    base = float(settings.BULK_RETRY_BACKOFF_SECONDS)
    return min(60.0, base * 2 ** max(0, attempts - 1)) * (0.5 + random.random())


def requests_per_item(kind: str) -> int:
    return _REQUESTS_PER_ITEM[BulkJob.Kind(kind)]


def expected_seconds(*, kind: str, count: int) -> float:
    """How long `count` users take at the configured rate budget (the binding limit at scale)."""
    return count * requests_per_item(kind) / (rate_limit.rate_per_minute() / 60.0)


def duration_words(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, math.ceil(seconds))} seconds"
    if seconds < 90 * 60:
        return f"{math.ceil(seconds / 60)} minutes"
    return f"{seconds / 3600:.1f} hours"


# --- Who may do what -------------------------------------------------------------------------


SEE_JOBS_PERMISSIONS = ("sessions_app.view_enduser", "sessions_app.create_session")


def may_see_jobs(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Session admins: the console's view permission and one of the two bulk operations."""
    return bool(
        user.is_active
        and user.has_perm("sessions_app.view_enduser")
        and (
            user.has_perm("sessions_app.create_session")
            or user.has_perm("sessions_app.refresh_session")
        )
    )


def may_run(user: AbstractBaseUser | AnonymousUser | None, kind: str) -> bool:
    return user is not None and bool(user.is_active and user.has_perm(_PERMISSION[kind]))


def _refuse(
    *, actor: Any, request: HttpRequest | None, kind: str, operation: str, job: BulkJob | None
) -> PermissionDenied:
    message = f"You may not {operation}: it needs {_PERMISSION[kind]}."
    audit.record(
        action="access.refused",
        outcome=AuditEvent.Outcome.REFUSED,
        actor=actor,
        request=request,
        reason=message,
        details={
            "operation": f"bulk.{operation.split()[0]}",
            "kind": kind,
            "job": str(job.public_id) if job is not None else None,
        },
    )
    return PermissionDenied(message)


# --- Starting, cancelling, retrying ------------------------------------------------------------


def bulk_job_start(
    *,
    kind: str,
    end_users: QuerySet[EndUser],
    toolkits: Sequence[str] | None,
    actor: AbstractBaseUser | AnonymousUser,
    request: HttpRequest | None = None,
) -> BulkJob:
    """Start a background job that creates or refreshes the session of each of `end_users`.

    `toolkits=None` (refresh only) keeps each user's current toolkits. Checks the permission
    (PermissionDenied, audited) and validates the toolkits with the same validator as every
    other path (ValidationError, audited as rejected input) before writing anything. Writes the
    job, one item per end user and a `bulk.start` audit event in one transaction, then hands the
    work to the task queue.
    """
    kind = BulkJob.Kind(kind)
    if not may_run(actor, kind):
        raise _refuse(
            actor=actor, request=request, kind=kind, operation=f"{kind} sessions in bulk", job=None
        )
    if toolkits is None and kind == BulkJob.Kind.CREATE:
        raise ValidationError("Choose the toolkits the new sessions get.", code="required")
    slugs: list[str] | None = None
    if toolkits is not None:
        try:
            slugs = services.toolkit_choices_clean(toolkits)
        except ValidationError as error:
            audit.record(
                action="input.rejected",
                outcome=AuditEvent.Outcome.REJECTED,
                actor=actor,
                request=request,
                reason=f"No bulk job was started: {services.validation_message(error)}",
                details={"operation": f"bulk.{kind}", "toolkits": [str(t)[:100] for t in toolkits]},
            )
            raise
    slots = concurrency()
    rate = int(rate_limit.rate_per_minute())
    pks = end_users.order_by("pk").values_list("pk", flat=True).distinct()
    with transaction.atomic():
        job = BulkJob.objects.create(
            kind=kind,
            toolkits=slugs,
            started_by=actor if actor.is_authenticated else None,
            started_by_username=actor.get_username() if actor.is_authenticated else "",
            concurrency=slots,
            rate_per_minute=rate,
        )
        total = 0
        batch: list[BulkJobItem] = []
        for pk in pks.iterator(chunk_size=2000):
            batch.append(BulkJobItem(job=job, end_user_id=pk))
            if len(batch) == 2000:
                BulkJobItem.objects.bulk_create(batch)
                total += len(batch)
                batch = []
        BulkJobItem.objects.bulk_create(batch)
        total += len(batch)
        if total == 0:
            raise ValidationError("No end users were selected.", code="empty")
        job.total = total
        job.save(update_fields=["total"])
        estimate = expected_seconds(kind=kind, count=total)
        audit.record(
            action="bulk.start",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            request=request,
            reason=f"Started a background job to {kind} the sessions of {total} end users "
            f"(about {duration_words(estimate)} at {rate} requests/minute).",
            details={
                "job": str(job.public_id),
                "kind": kind,
                "total": total,
                "toolkits": slugs,
                "keep_current_toolkits": slugs is None,
                "concurrency": slots,
                "rate_per_minute": rate,
                "expected_seconds": round(estimate),
            },
        )
        if _defers():
            _arm_slots(job)
    if not _defers():
        # The immediate backend runs the task inside enqueue: never inside our transaction.
        _arm_slots(job)
    job.refresh_from_db()
    return job


def bulk_job_cancel(
    *, job: BulkJob, actor: AbstractBaseUser | AnonymousUser, request: HttpRequest | None = None
) -> int:
    """Stop a job: items not started yet become `skipped`; items in flight finish. Returns how
    many were skipped. The job ends as `cancelled` (and `bulk.end` is written) once nothing is
    in flight."""
    if not may_run(actor, job.kind):
        raise _refuse(actor=actor, request=request, kind=job.kind, operation="cancel", job=job)
    name = actor.get_username()
    with transaction.atomic():
        locked = BulkJob.objects.select_for_update().get(pk=job.pk)
        if locked.ended:
            raise ValidationError("The job has already ended.", code="ended")
        locked.state = BulkJob.State.CANCELLING
        locked.cancelled_by_username = name
        locked.save(update_fields=["state", "cancelled_by_username"])
        skipped = _skip_pending(locked)
    _finish_if_done(job.pk)
    job.refresh_from_db()
    return skipped


def bulk_job_retry_failed(
    *, job: BulkJob, actor: AbstractBaseUser | AnonymousUser, request: HttpRequest | None = None
) -> int:
    """Send the `failed` items again (never `unknown` ones: Composio may have acted on those).

    Only once the job has ended; the job runs again and writes `bulk.start`/`bulk.end` again.
    Returns how many items were re-queued.
    """
    if not may_run(actor, job.kind):
        raise _refuse(
            actor=actor, request=request, kind=job.kind, operation="retry failed items", job=job
        )
    with transaction.atomic():
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
        audit.record(
            action="bulk.start",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            request=request,
            reason=f"Retrying {count} failed items of a background {locked.kind} job.",
            details={"job": str(locked.public_id), "kind": locked.kind, "retry": count},
        )
        if _defers():
            _arm_slots(locked)
    if not _defers():
        _arm_slots(locked)
    job.refresh_from_db()
    return count


def bulk_jobs_resume() -> list[BulkJob]:
    """Re-arm every slot of every job still running (after workers were restarted).

    New tokens make any runner still alive somewhere stop at its next step; items whose worker
    died are settled from their leases. The stand-in tasks would do the same, only later.
    """
    jobs = list(BulkJob.objects.filter(state__in=[BulkJob.State.RUNNING, BulkJob.State.CANCELLING]))
    for job in jobs:
        with transaction.atomic():
            if _defers():
                _arm_slots(job)
        if not _defers():
            _arm_slots(job)
    return jobs


# --- Progress ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    job: BulkJob
    counts: dict[str, int]
    total: int

    @property
    def done(self) -> int:
        return sum(self.counts.get(s, 0) for s in TERMINAL_ITEM_STATES)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 100

    @property
    def rows(self) -> list[tuple[str, str, int]]:
        """(state, label, count) for every item state, in the order a person reads them."""
        return [(value, label, self.counts.get(value, 0)) for value, label in Item.choices]

    @property
    def needs_attention(self) -> int:
        return self.counts.get(Item.FAILED, 0) + self.counts.get(Item.UNKNOWN, 0)

    @property
    def paused_seconds(self) -> int:
        until = self.job.paused_until
        if self.job.ended or until is None:
            return 0
        return max(0, math.ceil((until - timezone.now()).total_seconds()))

    @property
    def remaining_words(self) -> str:
        left = self.total - self.done
        if self.job.ended or left <= 0:
            return ""
        elapsed = (timezone.now() - self.job.created_at).total_seconds()
        if self.done and elapsed > 5:
            return duration_words(left * elapsed / self.done)
        return duration_words(expected_seconds(kind=self.job.kind, count=left))


def item_counts(job: BulkJob) -> dict[str, int]:
    counts = dict.fromkeys(Item.values, 0)
    rows = BulkJobItem.objects.filter(job=job).values("state").annotate(n=Count("id")).order_by()
    for row in rows:
        counts[row["state"]] = row["n"]
    return counts


def bulk_job_progress(job: BulkJob) -> Progress:
    return Progress(job=job, counts=item_counts(job), total=job.total)


FAILURE_COLUMNS = ("external_id", "state", "attempts", "last_error", "finished_at")


class _Echo:
    def write(self, value: str) -> str:
        return value


def failure_rows(job: BulkJob) -> Iterator[str]:
    """The job's failed and unknown items as CSV lines (header first), read in chunks."""
    writer = csv.writer(_Echo())
    yield writer.writerow(FAILURE_COLUMNS)
    items = (
        BulkJobItem.objects.filter(job=job, state__in=[Item.FAILED, Item.UNKNOWN])
        .order_by("id")
        .values_list("end_user__external_id", "state", "attempts", "last_error", "finished_at")
    )
    for external_id, state, attempts, error, finished in items.iterator(chunk_size=2000):
        yield writer.writerow(
            [
                _csv_safe(external_id),
                state,
                attempts,
                _csv_safe(error),
                finished.isoformat() if finished else "",
            ]
        )


def _csv_safe(value: str) -> str:
    # A cell starting with = + - @ is a formula to spreadsheets (CSV injection).
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# --- The runners -------------------------------------------------------------------------------


def _task():  # noqa: ANN202
    from sessions_app.bulk.tasks import bulk_job_run

    return bulk_job_run


def _defers() -> bool:
    """Whether the task backend can run a task later (the database backend can; the immediate
    backend runs tasks inside enqueue, so runners then work until the job is done)."""
    return bool(_task().get_backend().supports_defer)


def _arm_slots(job: BulkJob) -> None:
    """Give every slot a new token and enqueue a runner for it."""
    tokens = {str(slot): uuid.uuid4().hex for slot in range(job.concurrency)}
    BulkJob.objects.filter(pk=job.pk).update(runners=tokens)
    task = _task()
    for slot, token in tokens.items():
        task.enqueue(job.pk, int(slot), token)


def _take_slot(job_id: int, slot: int, token: str, defers: bool) -> str | None:
    """Become the slot's runner if `token` is still its token; leave a stand-in behind."""
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.ended or job.runners.get(str(slot)) != token:
            return None
        if not defers:
            return token
        new = uuid.uuid4().hex
        job.runners = {**job.runners, str(slot): new}
        job.save(update_fields=["runners"])
        # In the same transaction as the new token: if this worker dies, the stand-in is there.
        _task().using(run_after=timezone.now() + _deadman()).enqueue(job_id, slot, new)
        return new


def _hand_off(job_id: int, slot: int, token: str, run_after: datetime | None = None) -> None:
    # The same token: whichever of this continuation and the stand-in starts first takes over.
    task = _task() if run_after is None else _task().using(run_after=run_after)
    task.enqueue(job_id, slot, token)


def bulk_job_run_slot(*, job_id: int, slot: int, token: str) -> str:
    """Work on a job's items as the runner of one slot; returns why it stopped."""
    defers = _defers()
    current = _take_slot(job_id, slot, token, defers)
    if current is None:
        return "superseded"
    deadline = time.monotonic() + _slice_seconds() if defers else math.inf
    actor: AbstractBaseUser | None = None
    checked_leases = 0.0
    while True:
        job = BulkJob.objects.filter(pk=job_id).first()
        if job is None or job.runners.get(str(slot)) != current:
            return "superseded"
        if job.state != BulkJob.State.RUNNING:
            _finish_if_done(job_id)
            return job.state
        now = timezone.now()
        if job.paused_until is not None and job.paused_until > now:
            wait = (job.paused_until - now).total_seconds()
            if time.monotonic() + wait > deadline:
                _hand_off(job_id, slot, current, run_after=job.paused_until)
                return "paused"
            time.sleep(min(wait, 1.0))
            continue
        if time.monotonic() > deadline:
            _hand_off(job_id, slot, current)
            return "sliced"
        if time.monotonic() - checked_leases > 2.0:
            recover_expired_items(job)
            checked_leases = time.monotonic()
        waited = rate_limit.take(requests_per_item(job.kind))
        if waited > 0.05 and not _still_go(job_id, slot, current):
            # Paused, cancelled or superseded while this runner waited its turn: the tokens it
            # paid are lost, which only slows the budget down. Otherwise it spends them below
            # (looping back to reserve again would never send once the budget binds).
            continue
        item = _claim_next(job, current)
        if item is None:
            next_at = (
                job.items.filter(state=Item.PENDING).aggregate(at=Min("not_before"))["at"]
                if job.items.filter(state=Item.PENDING).exists()
                else None
            )
            if next_at is not None:
                wait = max(0.0, (next_at - timezone.now()).total_seconds())
                if time.monotonic() + wait > deadline:
                    _hand_off(job_id, slot, current, run_after=next_at)
                    return "waiting"
                time.sleep(min(wait, 1.0) + 0.01)
                continue
            if job.items.filter(state=Item.RUNNING).exists():
                if not defers:
                    time.sleep(0.2)
                    recover_expired_items(job)
                    continue
                # Other runners are finishing; their stand-ins cover them if they die.
                return "idle"
            _finish_if_done(job_id)
            return "done"
        if actor is None and job.started_by_id is not None:
            actor = get_user_model().objects.filter(pk=job.started_by_id).first()
        process_item(job, item, token=current, actor=actor)


def _still_go(job_id: int, slot: int, token: str) -> bool:
    """Whether this runner may still send now: its job runs, unpaused, and the slot is its own."""
    row = BulkJob.objects.filter(pk=job_id).values("state", "paused_until", "runners").first()
    return bool(
        row is not None
        and row["state"] == BulkJob.State.RUNNING
        and row["runners"].get(str(slot)) == token
        and (row["paused_until"] is None or row["paused_until"] <= timezone.now())
    )


def _claim_next(job: BulkJob, token: str) -> BulkJobItem | None:
    now = timezone.now()
    with transaction.atomic():
        item = (
            BulkJobItem.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("end_user")
            .filter(job_id=job.pk, state=Item.PENDING)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .order_by("id")
            .first()
        )
        if item is None:
            return None
        item.state = Item.RUNNING
        item.runner = token
        item.attempts += 1
        item.started_at = now
        item.lease_expires_at = now + _lease()
        item.not_before = None
        item.save(
            update_fields=[
                "state",
                "runner",
                "attempts",
                "started_at",
                "lease_expires_at",
                "not_before",
            ]
        )
    return item


def process_item(
    job: BulkJob, item: BulkJobItem, *, token: str, actor: AbstractBaseUser | None
) -> str:
    """Call the session service for one claimed item and settle it. Returns the item's state."""
    user = item.end_user
    if actor is None:
        return _settle(
            item,
            token,
            state=Item.FAILED,
            error=f"Not sent for {user.external_id}: the staff account that started the job "
            "no longer exists.",
        )
    called_at = timezone.now()
    try:
        if job.kind == BulkJob.Kind.CREATE:
            result = services.tool_router_session_create(
                end_user=user, toolkits=list(job.toolkits or []), actor=actor
            )
        else:
            result = services.tool_router_session_refresh(
                end_user=user, toolkits=job.toolkits, actor=actor
            )
    except Exception:
        # The service recorded the intent as unknown: Composio may have acted.
        logger.exception("bulk job %s: unexpected error for end user %s", job.pk, user.pk)
        return _settle(
            item,
            token,
            state=Item.UNKNOWN,
            error=f"An unexpected error interrupted the call for {user.external_id}; "
            "Composio may have acted.",
        )
    outcome = result.outcome
    if outcome == services.Outcome.SUCCEEDED:
        return _settle(item, token, state=Item.SUCCEEDED, session=result.session)
    if outcome in (services.Outcome.SKIPPED, services.Outcome.IN_PROGRESS):
        return _settle(item, token, state=Item.SKIPPED, error=result.message)
    if outcome == services.Outcome.UNKNOWN:
        return _settle(item, token, state=Item.UNKNOWN, error=result.message)
    if outcome == services.Outcome.REFUSED:
        return _settle(item, token, state=Item.FAILED, error=result.message)
    cause, retry_after = _failure_cause(job, user, called_at, actor)
    if cause == "rate_limited":
        seconds = retry_after if retry_after is not None else settings.BULK_DEFAULT_RETRY_AFTER
        pause_job(job, seconds=float(seconds))
        return _settle(
            item,
            token,
            state=Item.PENDING,
            error=f"Composio answered 429 (rate limited); the job paused for {seconds:g} s.",
        )
    if cause == "transient" and item.attempts < max_attempts():
        return _settle(
            item,
            token,
            state=Item.PENDING,
            error=result.message,
            not_before=timezone.now() + timedelta(seconds=_backoff(item.attempts)),
        )
    if cause == "transient":
        return _settle(
            item,
            token,
            state=Item.FAILED,
            error=f"Gave up after {item.attempts} attempts. {result.message}",
        )
    return _settle(item, token, state=Item.FAILED, error=result.message)


def _failure_cause(
    job: BulkJob, user: EndUser, called_at: datetime, actor: AbstractBaseUser
) -> tuple[str, int | None]:
    """Why a service call failed: "rate_limited", "transient" or "permanent" (+ Retry-After).

    The service answers with a sentence; the cause is in its records: the intent it committed
    for this call and the audit event naming that intent (the error class, status, Retry-After).
    No intent means it never called Composio (bad toolkits, permission): permanent.
    """
    operation = (
        SessionOperation.objects.filter(
            end_user=user, kind=job.kind, actor=actor, created_at__gte=called_at
        )
        .order_by("pk")
        .first()
    )
    if operation is None:
        return "permanent", None
    events = AuditEvent.objects.filter(
        end_user_external_id=user.external_id, action=_AUDIT_ACTION[job.kind]
    ).order_by("-sequence")[:5]
    for event in events:
        details = event.details or {}
        if details.get("operation") != str(operation.public_id):
            continue
        error = details.get("error")
        if error == "ComposioRateLimited":
            raw = details.get("retry_after")
            return "rate_limited", int(raw) if isinstance(raw, int | float) else None
        if error == "ComposioUnavailable":
            return "transient", None
        return "permanent", None
    # The service's own record is missing: retrying is safe (a failed intent changed nothing).
    return "transient", None


def pause_job(job: BulkJob, *, seconds: float) -> None:
    """Hold every runner of the job until now + seconds (a later pause is never shortened)."""
    until = timezone.now() + timedelta(seconds=seconds)
    BulkJob.objects.filter(pk=job.pk).filter(
        Q(paused_until__isnull=True) | Q(paused_until__lt=until)
    ).update(paused_until=until)


def _settle(
    item: BulkJobItem,
    token: str,
    *,
    state: str,
    error: str = "",
    session: ToolRouterSession | None = None,
    not_before: datetime | None = None,
) -> str:
    values: dict[str, Any] = {
        "state": state,
        "last_error": error[:500],
        "lease_expires_at": None,
        "runner": "",
    }
    if state == Item.PENDING:
        values["not_before"] = not_before
    else:
        values["finished_at"] = timezone.now()
        values["session"] = session
    # Only while this runner still holds it (a lease given up long ago was settled elsewhere).
    BulkJobItem.objects.filter(pk=item.pk, state=Item.RUNNING, runner=token).update(**values)
    return state


def recover_expired_items(job: BulkJob) -> int:
    """Settle items whose runner died (lease expired), from the session intent of that call."""
    now = timezone.now()
    stale = list(
        BulkJobItem.objects.filter(job=job, state=Item.RUNNING, lease_expires_at__lt=now)
        .select_related("end_user")
        .order_by("id")[:200]
    )
    for item in stale:
        operations = SessionOperation.objects.filter(end_user_id=item.end_user_id, kind=job.kind)
        if item.started_at is not None:
            operations = operations.filter(created_at__gte=item.started_at)
        if job.started_by_id is not None:
            operations = operations.filter(actor_id=job.started_by_id)
        operation = operations.order_by("pk").first()
        values: dict[str, Any] = {"lease_expires_at": None, "runner": ""}
        name = item.end_user.external_id
        if operation is None:
            # The runner died before its call: nothing was sent, the item may run again.
            values.update(state=Item.PENDING, last_error="Its worker stopped before the call.")
        elif operation.state == SessionOperation.State.SUCCEEDED:
            values.update(
                state=Item.SUCCEEDED,
                finished_at=now,
                last_error="",
                session=ToolRouterSession.objects.filter(
                    session_id=operation.remote_session_id
                ).first(),
            )
        elif operation.state == SessionOperation.State.FAILED and item.attempts < max_attempts():
            values.update(state=Item.PENDING, last_error=operation.error[:500])
        elif operation.state == SessionOperation.State.FAILED:
            values.update(state=Item.FAILED, finished_at=now, last_error=operation.error[:500])
        else:
            values.update(
                state=Item.UNKNOWN,
                finished_at=now,
                last_error=f"The worker stopped during the call for {name}; Composio may have "
                f"acted (intent {operation.public_id}). Not sent again: reconcile it.",
            )
        BulkJobItem.objects.filter(
            pk=item.pk, state=Item.RUNNING, runner=item.runner, lease_expires_at__lt=now
        ).update(**values)
    return len(stale)


def _skip_pending(job: BulkJob) -> int:
    who = job.cancelled_by_username or "a session admin"
    return job.items.filter(state=Item.PENDING).update(
        state=Item.SKIPPED,
        last_error=f"Cancelled by {who} before it was sent.",
        finished_at=timezone.now(),
        not_before=None,
    )


def _finish_if_done(job_id: int) -> bool:
    """End the job once no item is pending or running: counts, state, one `bulk.end` event."""
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.ended:
            return False
        if job.state == BulkJob.State.CANCELLING:
            # Items a runner put back (a retry, a 429) after the cancel are not sent either.
            _skip_pending(job)
        if job.items.filter(state__in=ACTIVE_ITEM_STATES).exists():
            return False
        counts = item_counts(job)
        cancelled = job.state == BulkJob.State.CANCELLING
        job.state = BulkJob.State.CANCELLED if cancelled else BulkJob.State.FINISHED
        job.counts = counts
        job.finished_at = timezone.now()
        job.paused_until = None
        job.runners = {}
        job.save(update_fields=["state", "counts", "finished_at", "paused_until", "runners"])
        trouble = counts[Item.FAILED] + counts[Item.UNKNOWN]
        summary = ", ".join(f"{counts[s]} {s}" for s in TERMINAL_ITEM_STATES)
        audit.record(
            action="bulk.end",
            outcome=AuditEvent.Outcome.FAILURE if trouble else AuditEvent.Outcome.SUCCESS,
            actor=job.started_by,
            reason=f"Background {job.kind} job {'cancelled' if cancelled else 'finished'}: "
            f"{summary} (of {job.total}).",
            details={
                "job": str(job.public_id),
                "kind": job.kind,
                "state": job.state,
                "counts": counts,
                "total": job.total,
                "cancelled_by": job.cancelled_by_username or None,
            },
        )
    return True


def item_states() -> Iterable[tuple[str, str]]:
    return Item.choices
