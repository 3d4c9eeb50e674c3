"""Reconciliation: settle what a call to Composio left open.

Three kinds of items are left open by the write order of `services` (reliability.md):

- an intent (`SessionOperation`) still `pending` long after its call should have ended (the
  process died mid-call), or `unknown` (Composio may have acted: a timeout, a 5xx, a cut or
  malformed answer, or our own commit failed after Composio said yes);
- a superseded session whose delete at Composio failed (`remote_delete_error`), or was never
  attempted (the process died right after the refresh committed).

`reconcile()` settles each one against Composio and says what it did, one `ReconcileItem` per
item. It is safe to run repeatedly and from a scheduler: a settled item is never picked again,
and concurrent runs never act twice on one item (each item is locked with
`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's IMMEDIATE transactions serialise
runs, and every item is re-read under the lock).

Composio cannot list sessions. An intent that never learned the remote session id (the create
timed out, or its answer was cut) therefore cannot be checked: Composio may hold a session for
that user that nobody knows the id or MCP URL of. Such an intent is closed as `unverifiable`
(an `unknown` audit event says so); there is nothing a person could do about it either, short
of asking Composio. See docs/reliability-suites.md.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from sessions_app.audit import log as audit
from sessions_app.composio import seam as composio_seam
from sessions_app.models import (
    AuditEvent,
    EndUser,
    SessionOperation,
    SessionToolkit,
    Toolkit,
    ToolRouterSession,
)

logger = logging.getLogger(__name__)

ACTION = "session.reconcile"
_M = TypeVar("_M", bound=Model)


class Result:
    """What reconciliation did about one item (the first word of its report line)."""

    ADOPTED = "adopted"  # Composio's session (or configuration) is now what the console records
    DELETED = "deleted"  # a session nobody should use was deleted at Composio
    CLOSED = "closed"  # nothing needed doing (already settled, or Composio never acted)
    UNVERIFIABLE = "unverifiable"  # cannot be checked (no remote id); closed, and says so
    RETRY = "retry"  # Composio failed just now; left as it was for the next run
    HUMAN = "human"  # needs a person: the line says why and what to do
    BUSY = "busy"  # another run holds it right now


ORDER = (
    Result.ADOPTED,
    Result.DELETED,
    Result.CLOSED,
    Result.UNVERIFIABLE,
    Result.RETRY,
    Result.HUMAN,
    Result.BUSY,
)


@dataclass(frozen=True)
class ReconcileItem:
    ref: str  # "operation <uuid>" or "session <session id>"
    end_user: str
    result: str
    message: str

    def line(self) -> str:
        return f"{self.result.upper():<12} {self.ref} ({self.end_user}): {self.message}"


@dataclass
class ReconcileReport:
    items: list[ReconcileItem] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        counts = Counter(item.result for item in self.items)
        return {result: counts.get(result, 0) for result in ORDER}

    @property
    def needs_human(self) -> list[ReconcileItem]:
        return [item for item in self.items if item.result == Result.HUMAN]

    @property
    def retry_later(self) -> list[ReconcileItem]:
        return [item for item in self.items if item.result == Result.RETRY]

    def summary(self) -> str:
        if not self.items:
            return "Nothing to reconcile."
        totals = self.totals()
        parts = ", ".join(f"{totals[r]} {r}" for r in ORDER)
        return f"{len(self.items)} items: {parts}."


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

    `grace`: a `pending` intent (or a superseded session never deleted at Composio) younger than
    this is still in flight and left alone (default TOOL_ROUTER_OPERATION_STALE_SECONDS).
    `settle`: an `unknown` intent is left alone this long after its call ended, so that Composio
    has finished whatever it was doing (default 60 s). `on_item` sees each item as it is settled.
    """
    grace = _grace_default() if grace is None else grace
    settle = _settle_default() if settle is None else settle
    report = ReconcileReport()
    for item in _items(grace=grace, settle=settle, limit=limit):
        report.items.append(item)
        if on_item is not None:
            on_item(item)
    return report


def _items(*, grace: timedelta, settle: timedelta, limit: int) -> Iterator[ReconcileItem]:
    now = timezone.now()
    open_ops = _open_operations(now=now, grace=grace, settle=settle)
    for pk in list(open_ops.order_by("created_at").values_list("pk", flat=True)[:limit]):
        item = _reconcile_operation(pk, open_ops=open_ops)
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
    return SessionOperation.objects.filter(
        Q(state=SessionOperation.State.PENDING, created_at__lt=now - grace)
        | Q(state=SessionOperation.State.UNKNOWN, finished_at__lt=now - settle)
        | Q(state=SessionOperation.State.UNKNOWN, finished_at__isnull=True)
    )


def _undeleted_sessions(*, now: datetime, grace: timedelta) -> QuerySet[ToolRouterSession]:
    return ToolRouterSession.objects.filter(
        status=ToolRouterSession.Status.SUPERSEDED, remote_deleted_at__isnull=True
    ).filter(~Q(remote_delete_error="") | Q(superseded_at__lt=now - grace))


def _locked(queryset: QuerySet[_M], pk: int, *, no_key: bool = False) -> _M | None:
    """The row, locked for this transaction; None if another run holds it or it was settled."""
    locking = queryset.select_for_update(skip_locked=True, of=("self",), no_key=no_key)
    return locking.filter(pk=pk).first()


# --- Intents -----------------------------------------------------------------------------------


@dataclass
class _Context:
    operation: SessionOperation
    end_user: EndUser

    @property
    def ref(self) -> str:
        return f"operation {self.operation.public_id}"

    def item(
        self,
        result: str,
        message: str,
        *,
        session: ToolRouterSession | None = None,
        details: dict[str, object] | None = None,
    ) -> ReconcileItem:
        """Record the outcome on the intent and in the audit trail; return the report line."""
        op = self.operation
        now = timezone.now()
        fields = ["resolution"]
        op.resolution = f"{result}: {message}"[:500]
        if result in (Result.ADOPTED, Result.DELETED, Result.CLOSED, Result.UNVERIFIABLE):
            op.state = SessionOperation.State.RESOLVED
            op.resolved_at = now
            fields += ["state", "resolved_at"]
            if op.finished_at is None:
                op.finished_at = now
                fields.append("finished_at")
        op.save(update_fields=fields)
        outcome = {
            Result.UNVERIFIABLE: AuditEvent.Outcome.UNKNOWN,
            Result.RETRY: AuditEvent.Outcome.FAILURE,
            Result.HUMAN: AuditEvent.Outcome.FAILURE,
        }.get(result, AuditEvent.Outcome.SUCCESS)
        audit.record(
            action=ACTION,
            outcome=outcome,
            end_user=self.end_user,
            session=session,
            reason=message,
            details={
                "via": "reconcile",
                "operation": str(op.public_id),
                "kind": op.kind,
                "result": result,
                **(details or {}),
            },
        )
        return ReconcileItem(self.ref, self.end_user.external_id, result, message)


def _reconcile_operation(pk: int, *, open_ops: QuerySet[SessionOperation]) -> ReconcileItem | None:
    row = SessionOperation.objects.filter(pk=pk).select_related("end_user").first()
    if row is None:
        return None
    busy = ReconcileItem(
        f"operation {row.public_id}",
        row.end_user.external_id,
        Result.BUSY,
        "another reconcile run (or a change to this user) holds it right now; the next run "
        "takes it.",
    )
    with transaction.atomic():
        # The session services' lock order: the end user, then the intent. NO KEY UPDATE lets
        # other transactions' deferred foreign-key checks through; SKIP LOCKED never waits.
        user = _locked(EndUser.objects.all(), row.end_user_id, no_key=True)
        if user is None:
            return busy if open_ops.filter(pk=pk).exists() else None
        operation = _locked(open_ops, pk)
        if operation is None:
            # Settled by another run meanwhile, or held by one.
            return busy if open_ops.filter(pk=pk).exists() else None
        ctx = _Context(operation, user)
        kind = operation.kind
        if kind in (SessionOperation.Kind.CREATE, SessionOperation.Kind.REFRESH):
            return _settle_new_session(ctx)
        if kind == SessionOperation.Kind.CHANGE_TOOLKITS:
            return _settle_change(ctx)
        return _settle_delete(ctx)


def _was(operation: SessionOperation) -> str:
    return (
        "left pending (its process ended mid-call)"
        if operation.state == "pending"
        else ("of unknown outcome")
    )


def _settle_new_session(ctx: _Context) -> ReconcileItem:
    op, name = ctx.operation, ctx.end_user.external_id
    remote_id = op.remote_session_id
    if not remote_id:
        return ctx.item(
            Result.UNVERIFIABLE,
            f"the {op.kind} was {_was(op)} and Composio never named a session, so it cannot be "
            f"checked: Composio lists no sessions. If Composio did create one for {name}, its id "
            "and MCP URL were never seen by anyone; the console records no session from it.",
            session=op.session,
        )
    stored = ToolRouterSession.objects.filter(session_id=remote_id).first()
    if stored is not None:
        return ctx.item(
            Result.CLOSED,
            f"session {remote_id} is already stored ({stored.status}).",
            session=stored,
        )
    try:
        remote = composio_seam.get_session(remote_id)
    except composio_seam.ComposioNotFound:
        return ctx.item(
            Result.CLOSED,
            f"Composio no longer has session {remote_id}: nothing to adopt or delete.",
            session=op.session,
        )
    except composio_seam.ComposioError as exc:
        return ctx.item(
            Result.RETRY, f"could not check session {remote_id}: {exc.message}", session=op.session
        )
    if remote.user_id and remote.user_id != name:
        return ctx.item(
            Result.HUMAN,
            f"Composio's session {remote_id} belongs to user id {remote.user_id!r}, not {name!r}; "
            "neither adopted nor deleted. Check it with Composio.",
            session=op.session,
        )
    # The end user is locked (see _reconcile_operation): store it only if they have none.
    active = ToolRouterSession.objects.filter(
        end_user=ctx.end_user, status=ToolRouterSession.Status.ACTIVE
    ).first()
    if active is None:
        adopted = _adopt(ctx, remote)
        if adopted is not None:
            return ctx.item(
                Result.ADOPTED,
                f"stored Composio's session {remote_id} as {name}'s active session "
                f"({', '.join(adopted.toolkits)}).",
                session=adopted,
                details={
                    "remote_session_id": remote_id,
                    "toolkits": list(adopted.toolkits),
                    "mcp_fingerprint": audit.mcp_fingerprint(remote.mcp_url),
                },
            )
    keep = f"{name} keeps session {active.session_id}" if active else f"{name} got a session"
    try:
        composio_seam.delete_session(remote_id)
    except composio_seam.ComposioNotFound:
        pass
    except composio_seam.ComposioError as exc:
        return ctx.item(
            Result.RETRY,
            f"{keep}; deleting the unrecorded session {remote_id} at Composio failed: "
            f"{exc.message}",
            session=active,
        )
    return ctx.item(
        Result.DELETED,
        f"{keep}, so the unrecorded session {remote_id} was deleted at Composio.",
        session=active,
        details={"remote_session_id": remote_id},
    )


def _adopt(ctx: _Context, remote: composio_seam.RemoteSession) -> ToolRouterSession | None:
    granted = list(remote.toolkits) or list(ctx.operation.toolkits)
    try:
        with transaction.atomic():
            session = ToolRouterSession.objects.create(
                end_user=ctx.end_user,
                session_id=remote.session_id,
                mcp_url=remote.mcp_url,
                mcp_type=remote.mcp_type,
                toolkits=granted,
                config_version=remote.config_version,
                created_by_id=ctx.operation.actor_id,
            )
            _store_toolkit_links(session, granted)
    except IntegrityError:
        # Someone stored a session for this user meanwhile: the database constraint decides.
        return None
    return session


def _store_toolkit_links(session: ToolRouterSession, slugs: list[str]) -> None:
    SessionToolkit.objects.filter(session=session).delete()
    ids = dict(Toolkit.objects.filter(slug__in=slugs).values_list("slug", "pk"))
    SessionToolkit.objects.bulk_create(
        [SessionToolkit(session=session, toolkit_id=ids[s]) for s in slugs if s in ids]
    )


def _settle_change(ctx: _Context) -> ReconcileItem:
    op = ctx.operation
    session = (
        ToolRouterSession.objects.select_for_update().filter(pk=op.session_id).first()
        if op.session_id
        else None
    )
    if session is None or session.status != ToolRouterSession.Status.ACTIVE:
        return ctx.item(
            Result.CLOSED,
            "the session it changed is no longer active: nothing to reconcile.",
            session=session,
        )
    try:
        remote = composio_seam.get_session(session.session_id)
    except composio_seam.ComposioNotFound:
        return ctx.item(
            Result.HUMAN,
            f"Composio no longer knows the active session {session.session_id}; refresh or "
            "delete it in the console.",
            session=session,
        )
    except composio_seam.ComposioError as exc:
        return ctx.item(
            Result.RETRY,
            f"could not check session {session.session_id}: {exc.message}",
            session=session,
        )
    remote_toolkits = list(remote.toolkits)
    if remote_toolkits == list(session.toolkits) and (
        remote.config_version == session.config_version
    ):
        return ctx.item(
            Result.CLOSED,
            f"Composio did not apply the change: session {session.session_id} still has "
            f"{', '.join(remote_toolkits)}, as recorded.",
            session=session,
        )
    before = list(session.toolkits)
    session.toolkits = remote_toolkits
    session.config_version = remote.config_version
    session.save(update_fields=["toolkits", "config_version"])
    _store_toolkit_links(session, remote_toolkits)
    return ctx.item(
        Result.ADOPTED,
        f"Composio holds {', '.join(remote_toolkits) or 'no toolkits'} for session "
        f"{session.session_id}; the console now records that.",
        session=session,
        details={
            "before": before,
            "toolkits": remote_toolkits,
            "config_version": remote.config_version,
        },
    )


def _settle_delete(ctx: _Context) -> ReconcileItem:
    op = ctx.operation
    session = (
        ToolRouterSession.objects.select_for_update().filter(pk=op.session_id).first()
        if op.session_id
        else None
    )
    if session is None or session.status == ToolRouterSession.Status.DELETED:
        return ctx.item(Result.CLOSED, "the session is already deleted.", session=session)
    # The delete was asked for by someone allowed to; finish it (deleting twice is harmless).
    already_gone = False
    try:
        composio_seam.delete_session(session.session_id)
    except composio_seam.ComposioNotFound:
        already_gone = True
    except composio_seam.ComposioError as exc:
        return ctx.item(
            Result.RETRY,
            f"deleting session {session.session_id} at Composio failed: {exc.message}",
            session=session,
        )
    now = timezone.now()
    session.status = ToolRouterSession.Status.DELETED
    session.deleted_at = now
    session.remote_deleted_at = session.remote_deleted_at or now
    session.remote_delete_error = ""
    session.save(update_fields=["status", "deleted_at", "remote_deleted_at", "remote_delete_error"])
    how = "Composio no longer had it" if already_gone else "deleted at Composio"
    return ctx.item(
        Result.DELETED,
        f"finished the requested delete of session {session.session_id} ({how}); the record "
        "is kept.",
        session=session,
        details={"already_gone": already_gone},
    )


# --- Superseded sessions not yet deleted at Composio ------------------------------------------


def _retry_remote_delete(
    pk: int, *, undeleted: QuerySet[ToolRouterSession]
) -> ReconcileItem | None:
    with transaction.atomic():
        session = _locked(undeleted, pk)
        if session is None:
            row = ToolRouterSession.objects.filter(pk=pk).select_related("end_user").first()
            if row is None or not undeleted.filter(pk=pk).exists():
                return None
            return ReconcileItem(
                f"session {row.session_id}",
                row.end_user.external_id,
                Result.BUSY,
                "another reconcile run is settling it right now.",
            )
        end_user = EndUser.objects.get(pk=session.end_user_id)
        ref = f"session {session.session_id}"
        previous = session.remote_delete_error
        try:
            composio_seam.delete_session(session.session_id)
        except composio_seam.ComposioNotFound:
            pass
        except composio_seam.ComposioError as exc:
            session.remote_delete_error = exc.message[:500]
            session.save(update_fields=["remote_delete_error"])
            message = f"deleting the superseded session at Composio failed again: {exc.message}"
            _audit_session(session, end_user, Result.RETRY, message)
            return ReconcileItem(ref, end_user.external_id, Result.RETRY, message)
        session.remote_deleted_at = timezone.now()
        session.remote_delete_error = ""
        session.save(update_fields=["remote_deleted_at", "remote_delete_error"])
        message = "deleted the superseded session at Composio" + (
            f" (the earlier attempt had failed: {previous})" if previous else ""
        )
        message = message[:480] + "."
        _audit_session(session, end_user, Result.DELETED, message)
        return ReconcileItem(ref, end_user.external_id, Result.DELETED, message)


def _audit_session(
    session: ToolRouterSession, end_user: EndUser, result: str, message: str
) -> None:
    audit.record(
        action=ACTION,
        outcome=AuditEvent.Outcome.SUCCESS
        if result == Result.DELETED
        else AuditEvent.Outcome.FAILURE,
        end_user=end_user,
        session=session,
        reason=message,
        details={"via": "reconcile", "kind": "remote_delete", "result": result},
    )
