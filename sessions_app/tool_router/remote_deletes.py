"""Deleting superseded sessions at Composio, so a leaked old MCP URL stops working: right after
a refresh, and again later for those whose delete failed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest
from django.utils import timezone

from sessions_app import trail
from sessions_app.composio import seam as composio_seam
from sessions_app.models import AuditEvent, ToolRouterSession
from sessions_app.tool_router import rate_limit, records


class Gone(Enum):
    """What deleting a superseded session at Composio came to."""

    DELETED = "deleted"  # Composio deleted it
    UNKNOWN_THERE = "unknown_there"  # Composio no longer knew it: nothing to delete, gone
    FAILED = "failed"  # the delete failed; stored on the row, retried later

    def __bool__(self) -> bool:
        return self is not Gone.FAILED


# Where a done remote delete is recorded: on its row at once, or, inside `recorded_by`, handed to
# a bulk runner that writes a batch of them in one statement with its settled items
# (`records.mark_remote_deleted_many`). One not written when its worker dies is found by
# reconciliation (a superseded session with no delete recorded), which deletes it again.
_recorder: ContextVar[Callable[[int, datetime], None] | None] = ContextVar(
    "remote_delete_recorder", default=None
)


@contextmanager
def recorded_by(record: Callable[[int, datetime], None]) -> Iterator[None]:
    """Within the block, hand each done remote delete (the session's id, when) to `record`."""
    token = _recorder.set(record)
    try:
        yield
    finally:
        _recorder.reset(token)


def remote_delete(
    session: ToolRouterSession,
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None,
    audit_ok: bool,
) -> Gone:
    """Delete a superseded session at Composio, best effort; a failure is stored and audited.

    Returns what came of it (truthy when it is gone). A session Composio no longer knows counts
    as gone, and says so (`Gone.UNKNOWN_THERE`): it was not "deleted at Composio".
    """

    record = trail.session_recorder("session.remote_delete", session, actor=actor, request=request)

    try:
        rate_limit.draw(request)
        known = composio_seam.delete_session_if_known(session.session_id)
    except composio_seam.ComposioError as exc:
        session.remote_delete_error = exc.message[:500]
        session.save(update_fields=["remote_delete_error"])
        record(
            AuditEvent.Outcome.UNKNOWN if exc.outcome_unknown else AuditEvent.Outcome.FAILURE,
            f"Deleting superseded session {session.session_id} at Composio failed: "
            f"{exc.message} It will be retried.",
        )
        return Gone.FAILED
    record_later = _recorder.get()
    if record_later is None:
        records.mark_remote_deleted(session)
    else:
        session.remote_deleted_at, session.remote_delete_error = timezone.now(), ""
        record_later(session.pk, session.remote_deleted_at)
    if audit_ok:
        record(
            AuditEvent.Outcome.SUCCESS,
            f"Deleted superseded session {session.session_id} at Composio."
            if known
            else f"Superseded session {session.session_id} was already gone: Composio no "
            "longer knew it.",
        )
    return Gone.DELETED if known else Gone.UNKNOWN_THERE


@dataclass
class RemoteDeleteRetryResult:
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def tool_router_session_retry_remote_deletes(
    *,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    request: HttpRequest | None = None,
    limit: int = 100,
) -> RemoteDeleteRetryResult:
    """Retry deleting, at Composio, superseded sessions whose remote delete failed earlier.

    Each retry writes one `session.remote_delete` audit event (success or failure).
    """
    result = RemoteDeleteRetryResult()
    pending = (
        ToolRouterSession.objects.filter(
            status=ToolRouterSession.Status.SUPERSEDED, remote_deleted_at__isnull=True
        )
        .exclude(remote_delete_error="")
        .select_related("end_user")
        .order_by("superseded_at")[:limit]
    )
    for session in pending:
        if remote_delete(session, actor=actor, request=request, audit_ok=True):
            result.deleted.append(session.session_id)
        else:
            result.failed[session.session_id] = session.remote_delete_error
    return result
