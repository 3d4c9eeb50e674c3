"""Reconciliation: settle what a call to Composio left open.

Three kinds of items are left open by the write order of the session services (`intents`):

- an intent (`SessionOperation`) still `pending` long after its call should have ended (the
  process died mid-call), or `unknown` (Composio may have acted: a timeout, a 5xx, a cut or
  malformed answer, or our own commit failed after Composio said yes);
- a superseded session whose delete at Composio failed (`remote_delete_error`), or was never
  attempted (the process died right after the refresh committed).

It also reports (and cannot settle) the active sessions marked stale (`drift`: Composio no longer
knows them): a person refreshes them.

`reconcile()` settles each one against Composio and says what it did, one `ReconcileItem` per
item. It is safe to run repeatedly and from a scheduler: a settled item is never picked again,
and concurrent runs never act twice on one item.

It follows the services' write order and never calls Composio inside a transaction that holds a
row lock. An intent is claimed the way the services claim an end user, through the intent row
itself: a short transaction takes it (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's
IMMEDIATE transactions serialise writers) and writes a lease on it (`resolution` names the run,
`resolved_at` the time, the state stays open; it lapses after
TOOL_ROUTER_OPERATION_STALE_SECONDS). Composio is then asked with no lock held, and
what it said is applied in a second short transaction that locks the end user and the intent
again, checks that the lease is still this run's and that no service call for the user is in
flight, and re-reads every row it changes. A run that dies leaves a lease that lapses. A
superseded session's remote delete needs no lease: deleting twice is harmless, and only the run
that records it first writes the audit event.

Composio cannot list sessions. An intent that never learned the remote session id (the create
timed out, or its answer was cut) therefore cannot be checked: Composio may hold a session for
that user that nobody knows the id or MCP URL of. Such an intent is closed as `unverifiable`
(an `unknown` audit event says so); there is nothing a person could do about it either, short
of asking Composio. See docs/reliability-suites.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from sessions_app import trail
from sessions_app.composio import seam as composio_seam
from sessions_app.models import AuditEvent, EndUser, SessionOperation, ToolRouterSession
from sessions_app.tool_router import drift, mcp_url, records
from sessions_app.tool_router import reconcile_intents as settle_steps
from sessions_app.tool_router.reconcile_report import (
    ACTION,
    ORDER,
    ReconcileItem,
    ReconcileReport,
    Result,
    StaleSession,
)

__all__ = ["ORDER", "ReconcileItem", "ReconcileReport", "Result", "StaleSession", "reconcile"]

logger = logging.getLogger(__name__)


def _grace_default() -> timedelta:
    return timedelta(seconds=settings.TOOL_ROUTER_OPERATION_STALE_SECONDS)


def _settle_default() -> timedelta:
    # An `unknown` intent whose call timed out may still be running at Composio for a while.
    return timedelta(seconds=settings.TOOL_ROUTER_RECONCILE_SETTLE_SECONDS)


def reconcile(
    *,
    grace: timedelta | None = None,
    settle: timedelta | None = None,
    limit: int = 500,
    on_item: Callable[[ReconcileItem], None] | None = None,
) -> ReconcileReport:
    """Settle open intents and failed remote deletes, oldest first; one audit event per item.

    `grace`: a `pending` intent (or a superseded session never deleted at Composio, or another
    run's lease) younger than this is still in flight and left alone (default
    TOOL_ROUTER_OPERATION_STALE_SECONDS). `settle`: an `unknown` intent is left alone this long
    after its call ended, so that Composio has finished whatever it was doing (default
    TOOL_ROUTER_RECONCILE_SETTLE_SECONDS). `on_item` sees each item as it is settled.
    """
    grace = _grace_default() if grace is None else grace
    settle = _settle_default() if settle is None else settle
    report = ReconcileReport()
    for item in _items(grace=grace, settle=settle, limit=limit):
        report.items.append(item)
        if on_item is not None:
            on_item(item)
    _report_stale(report, limit=limit)
    return report


def _report_stale(report: ReconcileReport, *, limit: int) -> None:
    """List the active sessions Composio no longer knows: only a person (a refresh) settles them."""
    stale = drift.stale_sessions().select_related("end_user").order_by("stale_since", "pk")
    report.stale_total = stale.count()
    report.stale = [
        StaleSession(
            masked_id=mcp_url.masked_id_text(session.session_id),
            end_user=session.end_user.external_id,
            since=f"{session.stale_since:%Y-%m-%d %H:%M}",
        )
        for session in stale[:limit]
    ]


def _items(*, grace: timedelta, settle: timedelta, limit: int) -> Iterator[ReconcileItem]:
    now = timezone.now()
    open_ops = _open_operations(now=now, grace=grace, settle=settle)
    for pk in list(open_ops.order_by("created_at").values_list("pk", flat=True)[:limit]):
        item = _reconcile_operation(pk, open_ops=open_ops, grace=grace)
        if item is not None:
            yield item
    undeleted = _undeleted_sessions(now=now, grace=grace)
    for pk in list(undeleted.order_by("superseded_at").values_list("pk", flat=True)[:limit]):
        item = _retry_remote_delete(pk, undeleted=undeleted)
        if item is not None:
            yield item


def _open_operations(
    *, now: datetime, grace: timedelta, settle: timedelta
) -> QuerySet[SessionOperation]:
    """Intents left open (some may be leased by another run right now: `take_lease` says)."""
    return SessionOperation.objects.filter(
        Q(state=SessionOperation.State.PENDING, created_at__lt=now - grace)
        | Q(state=SessionOperation.State.UNKNOWN, finished_at__lt=now - settle)
        | Q(state=SessionOperation.State.UNKNOWN, finished_at__isnull=True)
    )


def _undeleted_sessions(*, now: datetime, grace: timedelta) -> QuerySet[ToolRouterSession]:
    return ToolRouterSession.objects.filter(
        status=ToolRouterSession.Status.SUPERSEDED, remote_deleted_at__isnull=True
    ).filter(~Q(remote_delete_error="") | Q(superseded_at__lt=now - grace))


def _busy(ref: str, end_user: str, what: str) -> ReconcileItem:
    return ReconcileItem(ref, end_user, Result.BUSY, f"{what}; the next run takes it.")


# --- Intents -----------------------------------------------------------------------------------


def _reconcile_operation(
    pk: int, *, open_ops: QuerySet[SessionOperation], grace: timedelta
) -> ReconcileItem | None:
    row = SessionOperation.objects.filter(pk=pk).select_related("end_user").first()
    if row is None:
        return None
    lease = settle_steps.take_lease(pk, open_ops=open_ops)
    if lease is None:
        if not open_ops.filter(pk=pk).exists():
            return None  # settled by another run meanwhile
        return _busy(
            f"operation {row.public_id}",
            row.end_user.external_id,
            "another reconcile run (or a change to this user) holds it right now",
        )
    try:
        return settle_steps.settle(lease, stale_after=grace)
    finally:
        settle_steps.drop_lease_if_held(lease)


# --- Superseded sessions not yet deleted at Composio ------------------------------------------


def _retry_remote_delete(
    pk: int, *, undeleted: QuerySet[ToolRouterSession]
) -> ReconcileItem | None:
    """Delete at Composio with no lock held (deleting twice is harmless), then record it under
    the row's lock; a run that finds it already recorded writes nothing."""
    session = undeleted.filter(pk=pk).select_related("end_user").first()
    if session is None:
        return None
    ref, name = f"session {session.session_id}", session.end_user.external_id
    previous = session.remote_delete_error
    error = ""
    try:
        composio_seam.delete_session_if_known(session.session_id)
    except composio_seam.ComposioError as exc:
        error = exc.message
    with transaction.atomic():
        locked = undeleted.select_for_update(skip_locked=True).filter(pk=pk).first()
        if locked is None:
            if not undeleted.filter(pk=pk).exists():
                return None
            return _busy(ref, name, "another reconcile run is settling it right now")
        if error:
            locked.remote_delete_error = error[:500]
            locked.save(update_fields=["remote_delete_error"])
            message = f"deleting the superseded session at Composio failed again: {error}"
            _audit_session(locked, session.end_user, Result.RETRY, message)
            return ReconcileItem(ref, name, Result.RETRY, message)
        records.mark_remote_deleted(locked)
        message = "deleted the superseded session at Composio" + (
            f" (the earlier attempt had failed: {previous})" if previous else ""
        )
        message = message[:480] + "."
        _audit_session(locked, session.end_user, Result.DELETED, message)
        return ReconcileItem(ref, name, Result.DELETED, message)


def _audit_session(
    session: ToolRouterSession, end_user: EndUser, result: str, message: str
) -> None:
    trail.record(
        action=ACTION,
        outcome=AuditEvent.Outcome.SUCCESS
        if result == Result.DELETED
        else AuditEvent.Outcome.FAILURE,
        end_user=end_user,
        session=session,
        reason=message,
        details={"via": "reconcile", "kind": "remote_delete", "result": result},
    )
