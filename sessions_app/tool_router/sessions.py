"""The Tool Router session services: create, refresh, re-scope and delete an end user's
session at Composio, and retry failed remote deletes.

Views, admin actions, commands and tasks call these; each checks the actor's permission,
validates toolkits against the catalog and allow-list, follows the intent write order
(`intents`) and writes exactly one audit event per call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DatabaseError, IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from sessions_app import access
from sessions_app.composio import seam as composio_seam
from sessions_app.models import AuditEvent, EndUser, SessionOperation, ToolRouterSession
from sessions_app.tool_router import connections, intents, mcp_url, records, remote_deletes
from sessions_app.tool_router.mcp_url import short_id
from sessions_app.tool_router.results import Cause, Outcome, SessionResult

__all__ = [
    "Cause",
    "Outcome",
    "SessionResult",
    "tool_router_session_change_toolkits",
    "tool_router_session_create",
    "tool_router_session_delete",
    "tool_router_session_recreate",
    "tool_router_session_refresh",
]

logger = logging.getLogger(__name__)


def _guarded_new_session(
    attempt: intents.Attempt, toolkits: Sequence[str] | None, *, replacing: bool
) -> SessionResult:
    """Check the permission and the toolkits (refusing or rejecting as `intents.guard` does),
    then give the end user a new session; create and refresh differ only in `replacing`.
    `toolkits` None: the old session's, checked when the intent is claimed."""
    slugs, refused = intents.guard(attempt, toolkits, validate=toolkits is not None)
    if refused is not None:
        return refused
    return _new_session(attempt, toolkits=slugs, replacing=replacing)


def _new_session(
    attempt: intents.Attempt,
    *,
    toolkits: Sequence[str] | None,
    replacing: bool,
) -> SessionResult:
    """Create (or replace) the end user's session, in the write order of reliability.md."""
    operation = intents.claim_new_session(attempt, toolkits=toolkits, old_expected=replacing)
    if isinstance(operation, SessionResult):
        return operation
    toolkits = list(operation.toolkits)
    old = operation.session
    kept = (
        f"The old session {short_id(old.session_id)} is still active."
        if old is not None
        else "No session was stored."
    )
    remote = intents.call(
        attempt,
        operation,
        lambda: composio_seam.create_session(user_id=attempt.name, toolkits=list(toolkits)),
        session=old,
        kept=kept,
    )
    if isinstance(remote, SessionResult):
        return remote
    # Composio answered: name its session on the intent before anything else can fail.
    operation.remote_session_id = remote.session_id
    operation.save(update_fields=["remote_session_id"])
    granted = list(remote.toolkits) or list(toolkits)
    try:
        session = _store_new_session(attempt, operation, remote, granted, old)
    except (DatabaseError, IntegrityError) as exc:
        # Composio made a session we could not store. The intent names it for reconciliation.
        logger.error("storing session %s failed: %s", remote.session_id, type(exc).__name__)
        return _not_stored(attempt, operation, remote, granted, old, kept)
    if old is None:
        return attempt.result(
            Outcome.SUCCEEDED,
            f"Created session {short_id(session.session_id)} for {attempt.name} with "
            f"{', '.join(granted)}.",
            session,
        )
    return _replaced(attempt, session, old, granted)


def _store_new_session(
    attempt: intents.Attempt,
    operation: SessionOperation,
    remote: composio_seam.RemoteSession,
    granted: list[str],
    old: ToolRouterSession | None,
) -> ToolRouterSession:
    """In one transaction: supersede the old session, store the new one, close the intent, and
    write the one audit event."""
    with transaction.atomic():
        superseded_at = timezone.now()
        if old is not None:
            superseded = ToolRouterSession.objects.filter(
                pk=old.pk, status=ToolRouterSession.Status.ACTIVE
            ).update(status=ToolRouterSession.Status.SUPERSEDED, superseded_at=superseded_at)
            if not superseded:
                raise IntegrityError("The old session is no longer active.")
            old.status = ToolRouterSession.Status.SUPERSEDED
            old.superseded_at = superseded_at
        session = ToolRouterSession.objects.create(
            end_user=attempt.end_user,
            session_id=remote.session_id,
            mcp_url=remote.mcp_url,
            mcp_type=remote.mcp_type,
            toolkits=granted,
            config_version=remote.config_version,
            created_by=attempt.actor if intents.is_user(attempt.actor) else None,
            replaces=old,
            # Composio has just answered for it: drift checks it last.
            verified_at=timezone.now(),
        )
        records.store_new_session_links(
            session, granted, superseded=old, superseded_at=superseded_at
        )
        intents.finish(operation, state=SessionOperation.State.SUCCEEDED)
        attempt.audit(
            outcome=AuditEvent.Outcome.SUCCESS,
            reason=(
                f"Replaced {old.session_id} with {session.session_id}."
                if old is not None
                else f"Created {session.session_id}."
            ),
            session=session,
            details={
                "operation": str(operation.public_id),
                "toolkits": granted,
                "mcp_fingerprint": mcp_url.fingerprint(remote.mcp_url),
                "replaces": old.session_id if old is not None else None,
            },
        )
    return session


def _not_stored(
    attempt: intents.Attempt,
    operation: SessionOperation,
    remote: composio_seam.RemoteSession,
    granted: list[str],
    old: ToolRouterSession | None,
    kept: str,
) -> SessionResult:
    intents.finish(
        operation,
        state=SessionOperation.State.UNKNOWN,
        error=f"Composio created {remote.session_id} but storing it failed.",
        remote_session_id=remote.session_id,
    )
    message = (
        f"Composio created session {remote.session_id} for {attempt.name}, but the console "
        f"could not store it; it is recorded for reconciliation. {kept}"
    )
    attempt.audit(
        outcome=AuditEvent.Outcome.UNKNOWN,
        reason=message,
        session=old,
        details={
            "operation": str(operation.public_id),
            "remote_session_id": remote.session_id,
            "toolkits": granted,
        },
    )
    return attempt.result(Outcome.UNKNOWN, message, old)


def _replaced(
    attempt: intents.Attempt,
    session: ToolRouterSession,
    old: ToolRouterSession,
    granted: list[str],
) -> SessionResult:
    """Delete the superseded session at Composio (best effort) and say what happened (`old` as
    `_store_new_session` left it: superseded)."""
    gone = remote_deletes.remote_delete(
        old, actor=attempt.actor, request=attempt.request, audit_ok=False
    )
    old_id = short_id(old.session_id)
    if gone is remote_deletes.Gone.DELETED:
        tail = f"the old session {old_id} was deleted at Composio."
    elif gone is remote_deletes.Gone.UNKNOWN_THERE:
        tail = f"Composio no longer knew the old session {old_id} (nothing to delete there)."
    else:
        tail = (
            f"deleting the old session {short_id(old.session_id)} at Composio failed "
            f"({old.remote_delete_error}); it will be retried."
        )
    return attempt.result(
        Outcome.SUCCEEDED,
        f"Refreshed the session of {attempt.name}: new session {short_id(session.session_id)} with "
        f"{', '.join(granted)}; {tail}",
        session,
    )


def tool_router_session_create(
    *,
    end_user: EndUser,
    toolkits: Sequence[str],
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None = None,
) -> SessionResult:
    """Give an end user their own Tool Router session with exactly these toolkits.

    Skips (and says to refresh) a user who already has an active session. Writes the intent,
    calls Composio with no transaction open, then stores the session in one short transaction.
    Exactly one audit event per call.
    """
    attempt = intents.Attempt(SessionOperation.Kind.CREATE, end_user, actor, request)
    return _guarded_new_session(attempt, toolkits, replacing=False)


def tool_router_session_refresh(
    *,
    end_user: EndUser,
    toolkits: Sequence[str] | None = None,
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None = None,
) -> SessionResult:
    """Replace an end user's session with a new one (new id and MCP URL).

    `toolkits=None` keeps the current toolkits (validated again: a toolkit disallowed since then
    must be dropped explicitly). The old session is superseded in the same transaction that stores
    the new one, then deleted at Composio so a leaked old URL stops working; a failed delete is
    kept on the old row and retried by `tool_router_session_retry_remote_deletes`. If Composio
    fails or may have acted, the old session stays active.
    """
    attempt = intents.Attempt(SessionOperation.Kind.REFRESH, end_user, actor, request)
    return _guarded_new_session(attempt, toolkits, replacing=True)


def tool_router_session_recreate(
    *,
    end_user: EndUser,
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None = None,
) -> SessionResult:
    """Give an end user whose active session Composio no longer knows (stale, `drift`) a new
    session with the same toolkits: a refresh that keeps the toolkits. A user whose session is
    not marked stale is skipped (and audited as such): their session works, and replacing it
    would change its MCP URL under their agent."""
    active = ToolRouterSession.objects.filter(
        end_user=end_user, status=ToolRouterSession.Status.ACTIVE
    ).first()
    if active is None or active.stale_since is None:
        attempt = intents.Attempt(SessionOperation.Kind.REFRESH, end_user, actor, request)
        if not access.may(actor, access.SESSION_PERMISSION[attempt.kind]):
            return attempt.refused()
        message = (
            f"Skipped {end_user.external_id}: they have no active session; use create."
            if active is None
            else f"Skipped {end_user.external_id}: Composio knows their session "
            f"{short_id(active.session_id)} (not stale); nothing to re-create."
        )
        attempt.audit(
            outcome=AuditEvent.Outcome.FAILURE,
            reason=message,
            session=active,
            details={"result": "skipped", "recreate": True},
        )
        return attempt.result(Outcome.SKIPPED, message, active)
    return tool_router_session_refresh(end_user=end_user, actor=actor, request=request)


def tool_router_session_change_toolkits(
    *,
    session: ToolRouterSession,
    toolkits: Sequence[str],
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None = None,
) -> SessionResult:
    """Change an active session's toolkits in place (same id and MCP URL).

    Sends the stored `config_version` as `expected_config_version`: if someone changed the
    session at Composio since, nothing changes and the message says to reload.
    """
    attempt = intents.Attempt(
        SessionOperation.Kind.CHANGE_TOOLKITS, session.end_user, actor, request
    )
    slugs, refused = intents.guard(attempt, toolkits, validate=True)
    if refused is not None:
        return refused
    slugs = slugs or []

    def check(active: ToolRouterSession | None) -> ToolRouterSession | None:
        if active is None or active.pk != session.pk:
            message = (
                f"Skipped {attempt.name}: session {short_id(session.session_id)} is no longer "
                "active; reload the page."
            )
            raise attempt.skip(message, active)
        return active

    answered = intents.claim_and_call(
        attempt,
        toolkits=slugs,
        check=check,
        send=lambda current: composio_seam.update_session_toolkits(
            session_id=current.session_id,
            toolkits=slugs,
            expected_config_version=current.config_version,
        ),
        kept=lambda current: (
            f"Session {short_id(current.session_id)} keeps {', '.join(current.toolkits)}."
        ),
    )
    if isinstance(answered, SessionResult):
        return answered
    current, remote = answered.session, answered.answer
    granted = list(remote.toolkits) or slugs
    _store_change(attempt, answered.operation, current, remote, granted)
    connections.tool_router_session_connections_forget(session=current)
    return attempt.result(
        Outcome.SUCCEEDED,
        f"Changed the toolkits of {attempt.name}'s session {short_id(current.session_id)} in "
        f"place: {', '.join(granted)}.",
        current,
    )


def _store_change(
    attempt: intents.Attempt,
    operation: SessionOperation,
    current: ToolRouterSession,
    remote: composio_seam.RemoteSession,
    granted: list[str],
) -> None:
    before = list(current.toolkits)
    with transaction.atomic():
        current.toolkits = granted
        current.config_version = remote.config_version
        current.save(update_fields=["toolkits", "config_version"])
        records.store_toolkit_links(current, granted, audited_change=True)
        intents.finish(
            operation, state=SessionOperation.State.SUCCEEDED, remote_session_id=remote.session_id
        )
        attempt.audit(
            outcome=AuditEvent.Outcome.SUCCESS,
            reason=f"Toolkits of {current.session_id} changed in place.",
            session=current,
            details={
                "operation": str(operation.public_id),
                "before": before,
                "toolkits": granted,
                "config_version": remote.config_version,
            },
        )


def tool_router_session_delete(
    *,
    session: ToolRouterSession,
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None = None,
) -> SessionResult:
    """Delete a session at Composio and mark the row `deleted` (kept for history).

    A session Composio no longer knows is marked deleted too. If the delete fails, the session
    stays as it was.
    """
    attempt = intents.Attempt(SessionOperation.Kind.DELETE, session.end_user, actor, request)
    _, refused = intents.guard(attempt, None, validate=False)
    if refused is not None:
        return refused

    def check(active: ToolRouterSession | None) -> ToolRouterSession | None:
        fresh = ToolRouterSession.objects.select_for_update().get(pk=session.pk)
        if fresh.status == ToolRouterSession.Status.DELETED:
            shown = short_id(fresh.session_id)
            message = f"Skipped {attempt.name}: session {shown} is already deleted."
            raise attempt.skip(message, fresh)
        return fresh

    answered = intents.claim_and_call(
        attempt,
        toolkits=[],
        check=check,
        send=lambda target: composio_seam.delete_session_if_known(target.session_id),
        kept=lambda target: f"Session {short_id(target.session_id)} is unchanged.",
    )
    if isinstance(answered, SessionResult):
        return answered
    target, already_gone = answered.session, not answered.answer
    with transaction.atomic():
        records.mark_deleted(target)
        intents.finish(answered.operation, state=SessionOperation.State.SUCCEEDED)
        attempt.audit(
            outcome=AuditEvent.Outcome.SUCCESS,
            reason=f"Deleted {target.session_id}"
            + (" (Composio no longer knew it)." if already_gone else "."),
            session=target,
            details={"operation": str(answered.operation.public_id), "already_gone": already_gone},
        )
    note = " (Composio no longer knew it)" if already_gone else ""
    return attempt.result(
        Outcome.SUCCEEDED,
        f"Deleted session {short_id(target.session_id)} of {attempt.name}{note}; "
        "the record is kept.",
        target,
    )
