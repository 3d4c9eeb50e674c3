"""Deleting superseded sessions at Composio, so a leaked old MCP URL stops working: right after
a refresh, and again later for those whose delete failed."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest

from sessions_app import trail
from sessions_app.composio import seam as composio_seam
from sessions_app.models import AuditEvent, ToolRouterSession
from sessions_app.tool_router import rate_limit, records


def remote_delete(
    session: ToolRouterSession,
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None,
    audit_ok: bool,
) -> bool:
    """Delete a superseded session at Composio, best effort; a failure is stored and audited.

    Returns whether it is gone. A session Composio no longer knows counts as gone.
    """

    record = trail.session_recorder("session.remote_delete", session, actor=actor, request=request)

    try:
        rate_limit.draw(request)
        composio_seam.delete_session_if_known(session.session_id)
    except composio_seam.ComposioError as exc:
        session.remote_delete_error = exc.message[:500]
        session.save(update_fields=["remote_delete_error"])
        record(
            AuditEvent.Outcome.UNKNOWN if exc.outcome_unknown else AuditEvent.Outcome.FAILURE,
            f"Deleting superseded session {session.session_id} at Composio failed: "
            f"{exc.message} It will be retried.",
        )
        return False
    records.mark_remote_deleted(session)
    if audit_ok:
        record(
            AuditEvent.Outcome.SUCCESS,
            f"Deleted superseded session {session.session_id} at Composio.",
        )
    return True


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
