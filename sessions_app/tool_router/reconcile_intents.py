"""Settling one open intent: lease it, ask Composio with no lock held, apply under locks.

See `reconcile` for the design. Each `_settle_*` function reads what it needs without locks,
calls Composio, and hands a decision to `_apply`, which runs it in a short transaction that
holds the end user and the intent, and only while this run's lease still stands.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from sessions_app import trail
from sessions_app.composio import seam as composio_seam
from sessions_app.models import AuditEvent, EndUser, SessionOperation, ToolRouterSession
from sessions_app.tool_router import mcp_url, records
from sessions_app.tool_router.reconcile_report import ACTION, ReconcileItem, Result

LEASE_PREFIX = "reconciling: run "
_CLOSING = (Result.ADOPTED, Result.DELETED, Result.CLOSED, Result.UNVERIFIABLE)


@dataclass
class Lease:
    """This run's claim on an intent: the intent as read, and what it said before."""

    operation: SessionOperation
    token: str
    previous: str

    @property
    def ref(self) -> str:
        return f"operation {self.operation.public_id}"

    @property
    def name(self) -> str:
        return self.operation.end_user.external_id


def _locked(queryset: QuerySet, pk: int, *, no_key: bool = False) -> Model | None:
    """The row, locked for this transaction; None if another transaction holds it."""
    locking = queryset.select_for_update(skip_locked=True, of=("self",), no_key=no_key)
    return locking.filter(pk=pk).first()


def _lease_ttl() -> timedelta:
    # A run holds its lease while it calls Composio; one that died lets it go after this long,
    # the same time after which the services stop waiting for a pending intent.
    return timedelta(seconds=settings.TOOL_ROUTER_OPERATION_STALE_SECONDS)


def take_lease(pk: int, *, open_ops: QuerySet[SessionOperation]) -> Lease | None:
    """Claim an open intent for this run in one short transaction; None if it is gone, locked,
    or leased by another run that is still within its time."""
    with transaction.atomic():
        operation = _locked(open_ops, pk)
        if operation is None:
            return None
        leased = operation.resolution.startswith(LEASE_PREFIX) and operation.resolved_at
        if leased and operation.resolved_at >= timezone.now() - _lease_ttl():
            return None
        token = f"{LEASE_PREFIX}{uuid.uuid4().hex[:12]}"
        previous = operation.resolution
        operation.resolution, operation.resolved_at = token, timezone.now()
        operation.save(update_fields=["resolution", "resolved_at"])
    operation = SessionOperation.objects.select_related("end_user", "session").get(pk=pk)
    return Lease(operation, token, previous)


def drop_lease_if_held(lease: Lease) -> None:
    """Give the intent back as it was if this run ended without settling it."""
    SessionOperation.objects.filter(pk=lease.operation.pk, resolution=lease.token).update(
        resolution=lease.previous, resolved_at=None
    )


def _record(
    lease: Lease,
    operation: SessionOperation,
    result: str,
    message: str,
    *,
    session: ToolRouterSession | None = None,
    details: dict[str, object] | None = None,
) -> ReconcileItem:
    """Write the outcome on the intent and in the audit trail; return the report line."""
    now = timezone.now()
    operation.resolution = f"{result}: {message}"[:500]
    operation.resolved_at = now if result in _CLOSING else None
    fields = ["resolution", "resolved_at"]
    if result in _CLOSING:
        operation.state = SessionOperation.State.RESOLVED
        fields.append("state")
        if operation.finished_at is None:
            operation.finished_at = now
            fields.append("finished_at")
    operation.save(update_fields=fields)
    outcome = {
        Result.UNVERIFIABLE: AuditEvent.Outcome.UNKNOWN,
        Result.RETRY: AuditEvent.Outcome.FAILURE,
        Result.HUMAN: AuditEvent.Outcome.FAILURE,
    }.get(result, AuditEvent.Outcome.SUCCESS)
    trail.record(
        action=ACTION,
        outcome=outcome,
        end_user=lease.operation.end_user,
        session=session,
        reason=message,
        details={
            "via": "reconcile",
            "operation": str(operation.public_id),
            "kind": operation.kind,
            "result": result,
            **(details or {}),
        },
    )
    return ReconcileItem(lease.ref, lease.name, result, message)


Decide = Callable[[SessionOperation, EndUser], "ReconcileItem | None"]


def _apply(lease: Lease, decide: Decide, *, stale_after: timedelta) -> ReconcileItem | None:
    """Run `decide` holding the end user and the intent, if the lease still stands and no
    service call for this user is in flight; else report the item busy (lease kept until
    `drop_lease_if_held`)."""
    busy = ReconcileItem(
        lease.ref,
        lease.name,
        Result.BUSY,
        "a change to this user is in flight right now; the next run takes it.",
    )
    with transaction.atomic():
        # The services' lock order: the end user, then the intent. NO KEY UPDATE lets other
        # transactions' deferred foreign-key checks through; SKIP LOCKED never waits.
        user = _locked(EndUser.objects.all(), lease.operation.end_user_id, no_key=True)
        ours = SessionOperation.objects.filter(resolution=lease.token)
        operation = _locked(ours, lease.operation.pk) if user is not None else None
        if user is None or operation is None:
            return busy
        in_flight = SessionOperation.objects.filter(
            end_user=user,
            state=SessionOperation.State.PENDING,
            created_at__gte=timezone.now() - stale_after,
        ).exclude(pk=operation.pk)
        if in_flight.exists():
            return busy
        return decide(operation, user)


def settle(lease: Lease, *, stale_after: timedelta) -> ReconcileItem:
    """Settle the leased intent according to its kind."""
    kind = lease.operation.kind
    if kind in (SessionOperation.Kind.CREATE, SessionOperation.Kind.REFRESH):
        step = _settle_new_session
    elif kind == SessionOperation.Kind.CHANGE_TOOLKITS:
        step = _settle_change
    else:
        step = _settle_delete
    return step(lease, lambda decide: _apply(lease, decide, stale_after=stale_after))


Apply = Callable[[Decide], "ReconcileItem | None"]


def _closing(lease: Lease, result: str, message: str, **kwargs: object) -> Decide:
    return lambda operation, user: _record(lease, operation, result, message, **kwargs)


def _was(operation: SessionOperation) -> str:
    if operation.state == SessionOperation.State.PENDING:
        return "left pending (its process ended mid-call)"
    return "of unknown outcome"


def _settle_new_session(lease: Lease, apply: Apply) -> ReconcileItem:
    op, name = lease.operation, lease.name
    remote_id = op.remote_session_id
    if not remote_id:
        return apply(
            _closing(
                lease,
                Result.UNVERIFIABLE,
                f"the {op.kind} was {_was(op)} and Composio never named a session, so it cannot "
                f"be checked: Composio lists no sessions. If Composio did create one for {name}, "
                "its id and MCP URL were never seen by anyone; the console records no session "
                "from it.",
                session=op.session,
            )
        )
    stored = ToolRouterSession.objects.filter(session_id=remote_id).first()
    if stored is not None:
        message = f"session {remote_id} is already stored ({stored.status})."
        return apply(_closing(lease, Result.CLOSED, message, session=stored))
    try:
        remote = composio_seam.get_session(remote_id)
    except composio_seam.ComposioNotFound:
        message = f"Composio no longer has session {remote_id}: nothing to adopt or delete."
        return apply(_closing(lease, Result.CLOSED, message, session=op.session))
    except composio_seam.ComposioError as exc:
        message = f"could not check session {remote_id}: {exc.message}"
        return apply(_closing(lease, Result.RETRY, message, session=op.session))
    if remote.user_id and remote.user_id != name:
        message = (
            f"Composio's session {remote_id} belongs to user id {remote.user_id!r}, not "
            f"{name!r}; neither adopted nor deleted. Check it with Composio."
        )
        return apply(_closing(lease, Result.HUMAN, message, session=op.session))
    adopted = apply(lambda operation, user: _adopt_if_free(lease, operation, user, remote))
    if adopted is not None:
        return adopted
    return _delete_unrecorded(lease, apply, remote_id)


def _adopt_if_free(
    lease: Lease,
    operation: SessionOperation,
    user: EndUser,
    remote: composio_seam.RemoteSession,
) -> ReconcileItem | None:
    """Store Composio's session as the user's active one if they have none (the user is
    locked); None if they have one, so the unrecorded session is to be deleted."""
    if ToolRouterSession.objects.filter(session_id=remote.session_id).exists():
        message = f"session {remote.session_id} is already stored."
        return _record(lease, operation, Result.CLOSED, message)
    active = ToolRouterSession.objects.filter(
        end_user=user, status=ToolRouterSession.Status.ACTIVE
    ).exists()
    if active:
        return None
    granted = list(remote.toolkits) or list(operation.toolkits)
    try:
        with transaction.atomic():
            session = ToolRouterSession.objects.create(
                end_user=user,
                session_id=remote.session_id,
                mcp_url=remote.mcp_url,
                mcp_type=remote.mcp_type,
                toolkits=granted,
                config_version=remote.config_version,
                created_by_id=operation.actor_id,
            )
            records.store_new_session_links(session, granted)
    except IntegrityError:
        # Someone stored a session for this user meanwhile: the database constraint decides.
        return None
    return _record(
        lease,
        operation,
        Result.ADOPTED,
        f"stored Composio's session {remote.session_id} as {lease.name}'s active session "
        f"({', '.join(granted)}).",
        session=session,
        details={
            "remote_session_id": remote.session_id,
            "toolkits": granted,
            "mcp_fingerprint": mcp_url.fingerprint(remote.mcp_url),
        },
    )


def _delete_unrecorded(lease: Lease, apply: Apply, remote_id: str) -> ReconcileItem:
    """The user has a session already: delete Composio's unrecorded one (no lock held)."""
    active = ToolRouterSession.objects.filter(
        end_user_id=lease.operation.end_user_id, status=ToolRouterSession.Status.ACTIVE
    ).first()
    name = lease.name
    keep = f"{name} keeps session {active.session_id}" if active else f"{name} got a session"
    try:
        composio_seam.delete_session_if_known(remote_id)
    except composio_seam.ComposioError as exc:
        message = (
            f"{keep}; deleting the unrecorded session {remote_id} at Composio failed: {exc.message}"
        )
        return apply(_closing(lease, Result.RETRY, message, session=active))
    message = f"{keep}, so the unrecorded session {remote_id} was deleted at Composio."
    details = {"remote_session_id": remote_id}
    return apply(_closing(lease, Result.DELETED, message, session=active, details=details))


def _settle_change(lease: Lease, apply: Apply) -> ReconcileItem:
    seen = lease.operation.session
    if seen is None or seen.status != ToolRouterSession.Status.ACTIVE:
        message = "the session it changed is no longer active: nothing to reconcile."
        return apply(_closing(lease, Result.CLOSED, message, session=seen))
    try:
        remote = composio_seam.get_session(seen.session_id)
    except composio_seam.ComposioNotFound:
        message = (
            f"Composio no longer knows the active session {seen.session_id}; refresh or "
            "delete it in the console."
        )
        return apply(_closing(lease, Result.HUMAN, message, session=seen))
    except composio_seam.ComposioError as exc:
        message = f"could not check session {seen.session_id}: {exc.message}"
        return apply(_closing(lease, Result.RETRY, message, session=seen))

    def decide(operation: SessionOperation, user: EndUser) -> ReconcileItem:
        session = ToolRouterSession.objects.select_for_update().get(pk=seen.pk)
        if (session.status, session.config_version, session.toolkits) != (
            seen.status,
            seen.config_version,
            seen.toolkits,
        ):
            message = f"session {session.session_id} changed while it was checked."
            return _record(lease, operation, Result.RETRY, message, session=session)
        return _adopt_change(lease, operation, session, remote)

    return apply(decide)


def _adopt_change(
    lease: Lease,
    operation: SessionOperation,
    session: ToolRouterSession,
    remote: composio_seam.RemoteSession,
) -> ReconcileItem:
    remote_toolkits = list(remote.toolkits)
    if remote_toolkits == list(session.toolkits) and (
        remote.config_version == session.config_version
    ):
        message = (
            f"Composio did not apply the change: session {session.session_id} still has "
            f"{', '.join(remote_toolkits)}, as recorded."
        )
        return _record(lease, operation, Result.CLOSED, message, session=session)
    before = list(session.toolkits)
    session.toolkits = remote_toolkits
    session.config_version = remote.config_version
    session.save(update_fields=["toolkits", "config_version"])
    records.store_toolkit_links(session, remote_toolkits)
    return _record(
        lease,
        operation,
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


def _settle_delete(lease: Lease, apply: Apply) -> ReconcileItem:
    seen = lease.operation.session
    if seen is None or seen.status == ToolRouterSession.Status.DELETED:
        return apply(
            _closing(lease, Result.CLOSED, "the session is already deleted.", session=seen)
        )
    # The delete was asked for by someone allowed to; finish it (deleting twice is harmless).
    try:
        already_gone = not composio_seam.delete_session_if_known(seen.session_id)
    except composio_seam.ComposioError as exc:
        message = f"deleting session {seen.session_id} at Composio failed: {exc.message}"
        return apply(_closing(lease, Result.RETRY, message, session=seen))

    def decide(operation: SessionOperation, user: EndUser) -> ReconcileItem:
        session = ToolRouterSession.objects.select_for_update().get(pk=seen.pk)
        if session.status != ToolRouterSession.Status.DELETED:
            records.mark_deleted(session)
        how = "Composio no longer had it" if already_gone else "deleted at Composio"
        message = (
            f"finished the requested delete of session {session.session_id} ({how}); the "
            "record is kept."
        )
        details = {"already_gone": already_gone}
        return _record(lease, operation, Result.DELETED, message, session=session, details=details)

    return apply(decide)
