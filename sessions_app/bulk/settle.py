"""What becomes of a bulk job's items: one claimed item sent and settled, items of a dead worker
settled from their session intents, and the job ended once nothing is left to do.

How an item settles, from the `SessionResult` the session service returns:
- succeeded -> `succeeded` (with the new session); the service skipped the user, or the user was
  locked by another change in progress -> `skipped`, with the reason;
- cause RATE_LIMITED (429) -> the WHOLE job pauses for Retry-After, the item is retried;
- cause TRANSIENT (Composio unavailable: 503, connection refused) -> retried with exponential
  backoff, `failed` after BULK_MAX_ATTEMPTS calls;
- cause PERMANENT (400/401/403/404/422, bad toolkits, permission) -> `failed` ("Retry failed"
  re-queues it);
- outcome unknown (a create that may have reached Composio: timeout, 500, broken answer) ->
  `unknown`: never re-sent by the job, left to reconciliation.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from sessions_app import batch_update, trail
from sessions_app.bulk.progress import ACTIVE_ITEM_STATES, TERMINAL_ITEM_STATES, item_counts
from sessions_app.models import (
    AuditEvent,
    BulkJob,
    BulkJobItem,
    EndUser,
    SessionOperation,
    ToolRouterSession,
)
from sessions_app.tool_router import sessions

logger = logging.getLogger(__name__)

Item = BulkJobItem.State


def max_attempts() -> int:
    """Calls one item gets when Composio is unavailable before it fails."""
    return max(1, int(settings.BULK_MAX_ATTEMPTS))


def _backoff(attempts: int) -> float:
    # Exponential, capped at a minute, jittered so the retries of one outage spread out.
    base = float(settings.BULK_RETRY_BACKOFF_SECONDS)
    return min(60.0, base * 2 ** max(0, attempts - 1)) * (0.5 + random.random())


# --- One item ----------------------------------------------------------------------------------


# Where an item's settled values go: written at once, or (`defer`) handed to the runner, which
# writes a batch of terminal items in one statement (`settle_many`). An item settled but not yet
# written is still `running` under its lease: if its worker dies first, the lease runs out and
# the item is settled from its session intent like any other.
Deferred = Callable[[int, dict[str, Any]], None]


@dataclass(frozen=True)
class _To:
    token: str
    defer: Deferred | None


def process_item(
    job: BulkJob,
    item: BulkJobItem,
    *,
    token: str,
    actor: AbstractBaseUser | None,
    defer: Deferred | None = None,
) -> str:
    """Call the session service for one claimed item and settle it (a terminal state through
    `defer` when given). Returns the item's state."""
    to = _To(token, defer)
    user = item.end_user
    if actor is None:
        return _settle(
            item,
            to,
            state=Item.FAILED,
            error=f"Not sent for {user.external_id}: the staff account that started the job "
            "no longer exists.",
        )
    try:
        result = _call_service(job, user, actor)
    except Exception:
        # The service recorded the intent as unknown: Composio may have acted.
        logger.exception("bulk job %s: unexpected error for end user %s", job.pk, user.pk)
        return _settle(
            item,
            to,
            state=Item.UNKNOWN,
            error=f"An unexpected error interrupted the call for {user.external_id}; "
            "Composio may have acted.",
        )
    return _settle_result(job, item, to, result)


def _call_service(job: BulkJob, user: EndUser, actor: AbstractBaseUser) -> sessions.SessionResult:
    if job.kind == BulkJob.Kind.CREATE:
        return sessions.tool_router_session_create(
            end_user=user, toolkits=list(job.toolkits or []), actor=actor
        )
    if job.kind == BulkJob.Kind.RECREATE:
        return sessions.tool_router_session_recreate(end_user=user, actor=actor)
    return sessions.tool_router_session_refresh(end_user=user, toolkits=job.toolkits, actor=actor)


def _settle_result(job: BulkJob, item: BulkJobItem, to: _To, result: sessions.SessionResult) -> str:
    """Settle the item from what the service answered: its outcome, and for a failure its
    cause (whether sending again is safe) and Retry-After."""
    outcome = result.outcome
    if outcome == sessions.Outcome.SUCCEEDED:
        return _settle(item, to, state=Item.SUCCEEDED, session=result.session)
    if outcome in (sessions.Outcome.SKIPPED, sessions.Outcome.IN_PROGRESS):
        return _settle(item, to, state=Item.SKIPPED, error=result.message)
    if outcome == sessions.Outcome.UNKNOWN:
        return _settle(item, to, state=Item.UNKNOWN, error=result.message)
    if result.cause == sessions.Cause.RATE_LIMITED:
        seconds = result.retry_after
        if seconds is None:
            seconds = settings.BULK_DEFAULT_RETRY_AFTER
        pause_job(job, seconds=float(seconds))
        return _settle(
            item,
            to,
            state=Item.PENDING,
            error=f"Composio answered 429 (rate limited); the job paused for {seconds:g} s.",
        )
    if result.cause != sessions.Cause.TRANSIENT:
        return _settle(item, to, state=Item.FAILED, error=result.message)
    if item.attempts < max_attempts():
        return _settle(
            item,
            to,
            state=Item.PENDING,
            error=result.message,
            not_before=timezone.now() + timedelta(seconds=_backoff(item.attempts)),
        )
    return _settle(
        item,
        to,
        state=Item.FAILED,
        error=f"Gave up after {item.attempts} attempts. {result.message}",
    )


def pause_job(job: BulkJob, *, seconds: float) -> None:
    """Hold every runner of the job until now + seconds (a later pause is never shortened)."""
    until = timezone.now() + timedelta(seconds=seconds)
    BulkJob.objects.filter(pk=job.pk).filter(
        Q(paused_until__isnull=True) | Q(paused_until__lt=until)
    ).update(paused_until=until)


def _settle(
    item: BulkJobItem,
    to: _To,
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
        if to.defer is not None:
            # A retry or a pause is written at once: the runners schedule by it.
            to.defer(item.pk, values)
            return state
    # Only while this runner still holds it (a lease given up long ago was settled elsewhere).
    BulkJobItem.objects.filter(pk=item.pk, state=Item.RUNNING, runner=to.token).update(**values)
    return state


def settle_many(token: str, settled: list[tuple[int, dict[str, Any]]]) -> None:
    """Write terminal items `_settle` deferred, in one statement, for those this runner still
    holds (as `_settle` does)."""
    quote = connection.ops.quote_name
    table = quote(BulkJobItem._meta.db_table)
    batch_update.update_from_values(
        BulkJobItem,
        ["state", "last_error", "finished_at", "session"],
        [
            (
                pk,
                values["state"],
                values["last_error"],
                values["finished_at"],
                values["session"].pk if values["session"] is not None else None,
            )
            for pk, values in settled
        ],
        constants=f"{quote('lease_expires_at')} = NULL, {quote('runner')} = ''",
        where=f"{table}.{quote('state')} = %s AND {table}.{quote('runner')} = %s",
        params=[Item.RUNNING.value, token],
    )


# --- Items of a dead worker --------------------------------------------------------------------


def recover_expired_items(job: BulkJob) -> int:
    """Settle items whose runner died (lease expired), from the session intent of that call."""
    now = timezone.now()
    stale = list(
        BulkJobItem.objects.filter(job=job, state=Item.RUNNING, lease_expires_at__lt=now)
        .select_related("end_user")
        .order_by("id")[:200]
    )
    for item in stale:
        values = _values_from_intent(job, item, _intent_of(job, item), now)
        BulkJobItem.objects.filter(
            pk=item.pk, state=Item.RUNNING, runner=item.runner, lease_expires_at__lt=now
        ).update(**values)
    return len(stale)


def _intent_of(job: BulkJob, item: BulkJobItem) -> SessionOperation | None:
    """The session intent the item's last runner committed, if it got that far."""
    operations = SessionOperation.objects.filter(end_user_id=item.end_user_id, kind=job.kind)
    if item.started_at is not None:
        operations = operations.filter(created_at__gte=item.started_at)
    if job.started_by_id is not None:
        operations = operations.filter(actor_id=job.started_by_id)
    return operations.order_by("pk").first()


def _values_from_intent(
    job: BulkJob, item: BulkJobItem, operation: SessionOperation | None, now: datetime
) -> dict[str, Any]:
    """What an item whose worker died becomes: never sent -> pending; intent succeeded ->
    succeeded; intent failed -> pending or failed, as a live runner would; else unknown."""
    values: dict[str, Any] = {"lease_expires_at": None, "runner": ""}
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
            last_error=f"The worker stopped during the call for {item.end_user.external_id}; "
            f"Composio may have acted (intent {operation.public_id}). Not sent again: "
            "reconcile it.",
        )
    return values


# --- Ending the job ----------------------------------------------------------------------------


def skip_pending(job: BulkJob) -> int:
    """Mark the job's items not sent yet `skipped` (cancelled); returns how many."""
    who = job.cancelled_by_username or "a session admin"
    return job.items.filter(state=Item.PENDING).update(
        state=Item.SKIPPED,
        last_error=f"Cancelled by {who} before it was sent.",
        finished_at=timezone.now(),
        not_before=None,
    )


def finish_if_done(job_id: int) -> bool:
    """End the job once no item is pending or running: counts, state, one `bulk.end` event.
    Returns whether it ended the job now."""
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.ended:
            return False
        if job.state == BulkJob.State.CANCELLING:
            # Items a runner put back (a retry, a 429) after the cancel are not sent either.
            skip_pending(job)
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
        _audit_end(job, counts, cancelled=cancelled)
    return True


def _audit_end(job: BulkJob, counts: dict[str, int], *, cancelled: bool) -> None:
    trouble = counts[Item.FAILED] + counts[Item.UNKNOWN]
    summary = ", ".join(f"{counts[s]} {s}" for s in TERMINAL_ITEM_STATES)
    record_job_event(
        job,
        {
            "state": job.state,
            "counts": counts,
            "total": job.total,
            "cancelled_by": job.cancelled_by_username or None,
        },
        action="bulk.end",
        outcome=AuditEvent.Outcome.FAILURE if trouble else AuditEvent.Outcome.SUCCESS,
        actor=job.started_by,
        reason=f"Background {job.kind} job {'cancelled' if cancelled else 'finished'}: "
        f"{summary} (of {job.total}).",
    )


def record_job_event(job: BulkJob, details: Mapping[str, object], **event: Any) -> None:
    """Audit one event of a whole job (`bulk.start`, `bulk.end`): `event` is `trail.record`'s
    keywords but the details, which name the job and its kind first, then `details`."""
    trail.record(**event, details={"job": str(job.public_id), "kind": job.kind, **details})
