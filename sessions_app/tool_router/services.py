"""The console's operations. Views, admin actions, commands and tasks call these; nothing else
calls the Composio seam."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from sessions_app.audit import log as audit
from sessions_app.composio import seam as composio_seam
from sessions_app.models import (
    AuditEvent,
    EndUser,
    SessionOperation,
    Toolkit,
    ToolRouterSession,
)
from sessions_app.tool_router import mcp_url, records
from sessions_app.validators import external_id_problem

logger = logging.getLogger(__name__)

# --- Toolkit catalog ---------------------------------------------------------------------------


@dataclass
class CatalogSyncResult:
    total: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.vanished or self.returned)

    def summary(self) -> str:
        return (
            f"{self.total} toolkits in Composio's catalog: {len(self.added)} new, "
            f"{len(self.updated)} updated, {len(self.returned)} back in the catalog, "
            f"{len(self.vanished)} no longer listed."
        )


_CATALOG_FIELDS = ("name", "auth_schemes", "no_auth", "categories", "description")


def toolkit_catalog_sync(
    *,
    actor: AbstractBaseUser | None = None,
    request: HttpRequest | None = None,
    progress: Callable[[int, int], None] | None = None,
    page_size: int = 1000,
) -> CatalogSyncResult:
    """Mirror Composio's whole toolkit catalog into `Toolkit` rows.

    Reads every page first and writes nothing unless the catalog was read completely, so a fault
    half-way never marks the unread toolkits as vanished. New toolkits start NOT allowed; rows are
    never deleted (vanished ones get `in_catalog=False`). Audited, with what changed.
    """
    remote: dict[str, composio_seam.CatalogToolkit] = {}
    try:
        for page, total in composio_seam.iter_catalog_pages(page_size=page_size):
            for toolkit in page:
                remote[toolkit.slug.lower()] = toolkit
            if progress is not None:
                progress(len(remote), max(total, len(remote)))
    except composio_seam.ComposioError as exc:
        audit.record(
            action="catalog.sync",
            outcome=AuditEvent.Outcome.FAILURE,
            actor=actor,
            request=request,
            reason=exc.message,
        )
        raise

    result = CatalogSyncResult(total=len(remote))
    now = timezone.now()
    with transaction.atomic():
        existing = {t.slug: t for t in Toolkit.objects.select_for_update()}
        to_create: list[Toolkit] = []
        to_update: list[Toolkit] = []
        for slug, item in remote.items():
            values = {
                "name": item.name[:200],
                "auth_schemes": list(item.auth_schemes),
                "no_auth": item.no_auth,
                "categories": list(item.categories),
                "description": item.description,
            }
            row = existing.get(slug)
            if row is None:
                to_create.append(Toolkit(slug=slug, last_synced_at=now, **values))
                result.added.append(slug)
                continue
            differs = any(getattr(row, k) != v for k, v in values.items())
            if not row.in_catalog:
                result.returned.append(slug)
            elif differs:
                result.updated.append(slug)
            for key, value in values.items():
                setattr(row, key, value)
            row.in_catalog = True
            row.last_synced_at = now
            to_update.append(row)
        for slug, row in existing.items():
            if slug not in remote and row.in_catalog:
                row.in_catalog = False
                to_update.append(row)
                result.vanished.append(slug)
        Toolkit.objects.bulk_create(to_create, batch_size=500)
        Toolkit.objects.bulk_update(
            to_update, [*_CATALOG_FIELDS, "in_catalog", "last_synced_at"], batch_size=500
        )
        audit.record(
            action="catalog.sync",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            request=request,
            reason=result.summary(),
            details={
                "total": result.total,
                "added": sorted(result.added)[:200],
                "updated": sorted(result.updated)[:200],
                "vanished": sorted(result.vanished)[:200],
                "returned": sorted(result.returned)[:200],
            },
        )
    return result


# --- Toolkit choices -----------------------------------------------------------------------------


def toolkit_choices_clean(toolkits: Sequence[object]) -> list[str]:
    """The toolkit slugs a session may be given, in the order chosen, or a ValidationError.

    Every slug must be a lower-case string naming a toolkit that is in Composio's catalog (as last
    synced) and on the company allow-list; at least one, no duplicates, at most
    TOOL_ROUTER_MAX_TOOLKITS. An empty list would deny every toolkit at Composio and a missing
    one would grant them all, so neither ever passes. Never raises anything else.
    """
    if toolkits is None or isinstance(toolkits, str | bytes) or not isinstance(toolkits, Iterable):
        raise ValidationError("Choose the toolkits as a list of slugs.", code="not_a_list")
    items = list(toolkits)
    if not items:
        raise ValidationError(
            "Choose at least one toolkit: an empty list would deny every toolkit at Composio.",
            code="empty",
        )
    errors: list[ValidationError] = []
    slugs: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            errors.append(ValidationError("Toolkit slugs must be non-empty text.", code="blank"))
            continue
        slugs.append(item)
    if errors:
        raise ValidationError(errors[:1])

    not_lower = [s for s in slugs if s != s.lower() or s != s.strip()]
    if not_lower:
        raise ValidationError(
            "Toolkit slugs are lower-case with no spaces: "
            + ", ".join(repr(s[:60]) for s in not_lower[:10])
            + " is not.",
            code="not_lowercase",
        )
    seen: set[str] = set()
    duplicates = sorted({s for s in slugs if s in seen or seen.add(s)})
    if duplicates:
        raise ValidationError(
            "Each toolkit may be chosen once; chosen more than once: "
            + ", ".join(duplicates)
            + ".",
            code="duplicate",
        )
    limit = settings.TOOL_ROUTER_MAX_TOOLKITS
    if len(slugs) > limit:
        raise ValidationError(
            f"{len(slugs)} toolkits were chosen; a session may have at most {limit}.",
            code="too_many",
        )
    known = {
        t.slug: t
        # A NUL byte cannot be sent to PostgreSQL; such a slug is simply unknown.
        for t in Toolkit.objects.filter(slug__in=[s[:100] for s in slugs if "\x00" not in s]).only(
            "slug", "is_allowed", "in_catalog"
        )
    }
    unknown = [s for s in slugs if s not in known]
    if unknown:
        raise ValidationError(
            "Not in Composio's toolkit catalog: "
            + ", ".join(repr(s[:60]) for s in unknown[:10])
            + (". Sync the catalog if it is new." if len(unknown) <= 10 else ", ..."),
            code="unknown",
        )
    vanished = [s for s in slugs if not known[s].in_catalog]
    if vanished:
        raise ValidationError(
            "No longer in Composio's toolkit catalog: " + ", ".join(vanished) + ".",
            code="vanished",
        )
    disallowed = [s for s in slugs if not known[s].is_allowed]
    if disallowed:
        raise ValidationError(
            "Not on the allow-list: " + ", ".join(disallowed) + ". Ask a session admin to allow "
            "it on the Toolkits page first.",
            code="not_allowed",
        )
    return slugs


def validation_message(error: ValidationError) -> str:
    """One sentence from a ValidationError, fit to show a person."""
    return " ".join(str(m) for m in error.messages)


def mcp_url_masked(url: str) -> str:
    """The MCP URL's one masked form, as text (see `mcp_url.mask`)."""
    masked = mcp_url.mask(url)
    return str(masked) if masked else ""


# --- Tool Router sessions ------------------------------------------------------------------------


class Outcome:
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNKNOWN = "unknown"
    REFUSED = "refused"
    IN_PROGRESS = "in_progress"


class Cause:
    """Why a call did not succeed, for callers that decide whether to try again (bulk jobs)."""

    NONE = ""
    RATE_LIMITED = "rate_limited"  # Composio answered 429: wait `retry_after`, then retry
    TRANSIENT = "transient"  # Composio did not act (unreachable, 503): safe to retry
    PERMANENT = "permanent"  # refused, rejected, skipped or unknown: do not re-send


@dataclass(frozen=True)
class SessionResult:
    end_user: EndUser
    outcome: str
    message: str
    session: ToolRouterSession | None = None
    cause: str = Cause.NONE
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.SUCCEEDED


# Which permission each kind of operation needs, and the audit action it writes.
_PERMISSION = {
    SessionOperation.Kind.CREATE: "sessions_app.create_session",
    SessionOperation.Kind.REFRESH: "sessions_app.refresh_session",
    SessionOperation.Kind.CHANGE_TOOLKITS: "sessions_app.change_session_toolkits",
    SessionOperation.Kind.DELETE: "sessions_app.delete_session",
}
_AUDIT_ACTION = {
    SessionOperation.Kind.CREATE: "session.create",
    SessionOperation.Kind.REFRESH: "session.refresh",
    SessionOperation.Kind.CHANGE_TOOLKITS: "session.change_toolkits",
    SessionOperation.Kind.DELETE: "session.delete",
}
_VERB = {
    SessionOperation.Kind.CREATE: "create a session",
    SessionOperation.Kind.REFRESH: "refresh the session",
    SessionOperation.Kind.CHANGE_TOOLKITS: "change the session's toolkits",
    SessionOperation.Kind.DELETE: "delete the session",
}


def _stale_after() -> timedelta:
    # A pending intent older than this belongs to a process that died mid-call; it no longer
    # locks the end user (its outcome is then unknown and left to reconciliation).
    return timedelta(seconds=settings.TOOL_ROUTER_OPERATION_STALE_SECONDS)


def _actor_may(actor: AbstractBaseUser | AnonymousUser | None, permission: str) -> bool:
    # actor=None is the system itself (a management command run from the server's shell).
    return actor is None or bool(actor.is_active and actor.has_perm(permission))


class _Refusal(Exception):
    """Raised inside the claim transaction; carries the result to return."""

    def __init__(self, result: SessionResult, *, audit_outcome: str, reason: str) -> None:
        super().__init__(result.message)
        self.result = result
        self.audit_outcome = audit_outcome
        self.reason = reason


@dataclass
class _Attempt:
    """One service call: the actor, the request, what it is about and its one audit event."""

    kind: str
    end_user: EndUser
    actor: AbstractBaseUser | AnonymousUser | None
    request: HttpRequest | None

    @property
    def name(self) -> str:
        return self.end_user.external_id

    def audit(
        self,
        *,
        outcome: str,
        reason: str,
        session: ToolRouterSession | None = None,
        action: str | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        audit.record(
            action=action or _AUDIT_ACTION[self.kind],
            outcome=outcome,
            actor=self.actor,
            request=self.request,
            end_user=self.end_user,
            session=session,
            reason=reason,
            details={"via": "service", **(details or {})},
        )

    def result(
        self,
        outcome: str,
        message: str,
        session: ToolRouterSession | None = None,
        *,
        cause: str | None = None,
        retry_after: int | None = None,
    ) -> SessionResult:
        if cause is None:
            cause = Cause.NONE if outcome == Outcome.SUCCEEDED else Cause.PERMANENT
        return SessionResult(
            end_user=self.end_user,
            outcome=outcome,
            message=message,
            session=session,
            cause=cause,
            retry_after=retry_after,
        )

    def refused(self) -> SessionResult:
        message = f"You may not {_VERB[self.kind]} of {self.name}: permission denied."
        if self.kind == SessionOperation.Kind.CREATE:
            message = f"You may not create a session for {self.name}: permission denied."
        self.audit(
            action="access.refused",
            outcome=AuditEvent.Outcome.REFUSED,
            reason=message,
            details={"operation": self.kind, "permission": _PERMISSION[self.kind]},
        )
        return self.result(Outcome.REFUSED, message)

    def rejected(self, error: ValidationError, toolkits: object) -> SessionResult:
        cause = validation_message(error)
        message = f"Nothing was changed for {self.name}: {cause}"
        self.audit(
            action="input.rejected",
            outcome=AuditEvent.Outcome.REJECTED,
            reason=message,
            details={"operation": self.kind, "toolkits": _printable(toolkits)},
        )
        return self.result(Outcome.FAILED, message)


def _printable(toolkits: object) -> list[str]:
    if isinstance(toolkits, Iterable) and not isinstance(toolkits, str | bytes):
        return [str(t)[:100] for t in list(toolkits)[:50]]
    return [str(toolkits)[:100]]


def _claim(
    attempt: _Attempt,
    *,
    toolkits: Sequence[str],
    check: Callable[[ToolRouterSession | None], ToolRouterSession | None],
) -> SessionOperation:
    """Commit the intent, which is also the per-end-user lock.

    The end user's row is locked (PostgreSQL `SELECT ... FOR UPDATE`; SQLite's IMMEDIATE
    transactions serialise writers) while looking for another pending intent, and the partial
    unique constraint on pending intents is the backstop. `check` sees the current active
    session and returns the session to act on, or raises `_Refusal`.
    """
    try:
        with transaction.atomic():
            # NO KEY UPDATE: serialises claims, yet lets another attempt's store transaction
            # take the FOR KEY SHARE its deferred foreign-key checks need at COMMIT (a plain
            # FOR UPDATE here deadlocked with it: claim waits for that attempt's intent row,
            # the attempt's COMMIT waits for this end-user row).
            EndUser.objects.select_for_update(no_key=True).filter(pk=attempt.end_user.pk).first()
            pending = SessionOperation.objects.select_for_update().filter(
                end_user=attempt.end_user, state=SessionOperation.State.PENDING
            )
            for stale in pending.filter(created_at__lt=timezone.now() - _stale_after()):
                stale.state = SessionOperation.State.UNKNOWN
                stale.error = "Abandoned: still pending long after its call should have ended."
                stale.finished_at = timezone.now()
                stale.save(update_fields=["state", "error", "finished_at"])
            if pending.exists():
                raise _in_progress(attempt)
            active = (
                ToolRouterSession.objects.select_for_update()
                .filter(end_user=attempt.end_user, status=ToolRouterSession.Status.ACTIVE)
                .first()
            )
            session = check(active)
            return SessionOperation.objects.create(
                kind=attempt.kind,
                end_user=attempt.end_user,
                session=session,
                toolkits=list(toolkits),
                actor=attempt.actor if _is_user(attempt.actor) else None,
            )
    except IntegrityError as exc:
        # Another request claimed this end user between our check and our insert.
        raise _in_progress(attempt) from exc


def _is_user(actor: object) -> bool:
    return actor is not None and bool(getattr(actor, "is_authenticated", False))


def _in_progress(attempt: _Attempt) -> _Refusal:
    message = (
        f"Another change to {attempt.name}'s session is already in progress; "
        "wait for it to finish, then reload."
    )
    return _Refusal(
        attempt.result(Outcome.IN_PROGRESS, message),
        audit_outcome=AuditEvent.Outcome.FAILURE,
        reason=message,
    )


def _finish(
    operation: SessionOperation, *, state: str, error: str = "", remote_session_id: str = ""
) -> None:
    operation.state = state
    operation.error = error[:500]
    operation.finished_at = timezone.now()
    fields = ["state", "error", "finished_at"]
    if remote_session_id:
        operation.remote_session_id = remote_session_id
        fields.append("remote_session_id")
    operation.save(update_fields=fields)


def _failed(
    attempt: _Attempt,
    operation: SessionOperation,
    exc: composio_seam.ComposioError,
    *,
    session: ToolRouterSession | None,
    kept: str,
) -> SessionResult:
    """Record a call Composio refused or may have acted on; nothing else is written."""
    unknown = exc.outcome_unknown
    _finish(
        operation,
        state=SessionOperation.State.UNKNOWN if unknown else SessionOperation.State.FAILED,
        error=exc.message,
    )
    create = attempt.kind == SessionOperation.Kind.CREATE
    verb = "create a session for" if create else f"{_VERB[attempt.kind]} of"
    message = f"Could not {verb} {attempt.name}: {exc.message}"
    if kept:
        message += f" {kept}"
    details: dict[str, object] = {
        "operation": str(operation.public_id),
        "error": type(exc).__name__,
    }
    if isinstance(exc, composio_seam.ComposioRejected):
        details.update(status=exc.status, slug=exc.slug)
    if isinstance(exc, composio_seam.ComposioRateLimited):
        details.update(retry_after=exc.retry_after)
    attempt.audit(
        outcome=AuditEvent.Outcome.UNKNOWN if unknown else AuditEvent.Outcome.FAILURE,
        reason=message,
        session=session,
        details=details,
    )
    cause = Cause.PERMANENT
    retry_after = None
    if isinstance(exc, composio_seam.ComposioRateLimited):
        cause, retry_after = Cause.RATE_LIMITED, exc.retry_after
    elif isinstance(exc, composio_seam.ComposioUnavailable) and not unknown:
        cause = Cause.TRANSIENT
    return attempt.result(
        Outcome.UNKNOWN if unknown else Outcome.FAILED,
        message,
        session,
        cause=cause,
        retry_after=retry_after,
    )


def _new_session(
    attempt: _Attempt,
    *,
    toolkits: Sequence[str],
    replacing: bool,
) -> SessionResult:
    """Create (or replace) the end user's session, in the write order of reliability.md."""
    operation = _claim_or_result(attempt, toolkits=toolkits, old_expected=replacing)
    if isinstance(operation, SessionResult):
        return operation
    old = operation.session
    kept = (
        f"The old session {old.short_id} is still active."
        if old is not None
        else "No session was stored."
    )
    try:
        remote = composio_seam.create_session(user_id=attempt.name, toolkits=list(toolkits))
    except composio_seam.ComposioError as exc:
        return _failed(attempt, operation, exc, session=old, kept=kept)
    except Exception:
        _finish(operation, state=SessionOperation.State.UNKNOWN, error="Unexpected error.")
        attempt.audit(
            outcome=AuditEvent.Outcome.UNKNOWN,
            reason=f"An unexpected error interrupted the call for {attempt.name}.",
            session=old,
        )
        raise

    # Composio answered: name its session on the intent before anything else can fail.
    operation.remote_session_id = remote.session_id
    operation.save(update_fields=["remote_session_id"])

    granted = list(remote.toolkits) or list(toolkits)
    now = timezone.now()
    try:
        with transaction.atomic():
            if old is not None:
                superseded = ToolRouterSession.objects.filter(
                    pk=old.pk, status=ToolRouterSession.Status.ACTIVE
                ).update(status=ToolRouterSession.Status.SUPERSEDED, superseded_at=now)
                if not superseded:
                    raise IntegrityError("The old session is no longer active.")
            session = ToolRouterSession.objects.create(
                end_user=attempt.end_user,
                session_id=remote.session_id,
                mcp_url=remote.mcp_url,
                mcp_type=remote.mcp_type,
                toolkits=granted,
                config_version=remote.config_version,
                created_by=attempt.actor if _is_user(attempt.actor) else None,
                replaces=old,
            )
            records.store_toolkit_links(session, granted)
            _finish(operation, state=SessionOperation.State.SUCCEEDED)
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
    except (DatabaseError, IntegrityError) as exc:
        # Composio made a session we could not store. The intent names it for reconciliation.
        logger.error("storing session %s failed: %s", remote.session_id, type(exc).__name__)
        _finish(
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

    listed = ", ".join(granted)
    if old is None:
        return attempt.result(
            Outcome.SUCCEEDED,
            f"Created session {session.short_id} for {attempt.name} with {listed}.",
            session,
        )
    old.refresh_from_db()
    deleted = _remote_delete(old, actor=attempt.actor, request=attempt.request, audit_ok=False)
    tail = (
        f"the old session {old.short_id} was deleted at Composio."
        if deleted
        else f"deleting the old session {old.short_id} at Composio failed "
        f"({old.remote_delete_error}); it will be retried."
    )
    return attempt.result(
        Outcome.SUCCEEDED,
        f"Refreshed the session of {attempt.name}: new session {session.short_id} with "
        f"{listed}; {tail}",
        session,
    )


def _claim_or_result(
    attempt: _Attempt, *, toolkits: Sequence[str], old_expected: bool
) -> SessionOperation | SessionResult:
    def check(active: ToolRouterSession | None) -> ToolRouterSession | None:
        if not old_expected and active is not None:
            message = (
                f"Skipped {attempt.name}: they already have an active session "
                f"({active.short_id}); use refresh to replace it."
            )
            raise _Refusal(
                attempt.result(Outcome.SKIPPED, message, active),
                audit_outcome=AuditEvent.Outcome.FAILURE,
                reason=message,
            )
        if old_expected and active is None:
            message = f"Skipped {attempt.name}: they have no active session; use create."
            raise _Refusal(
                attempt.result(Outcome.SKIPPED, message),
                audit_outcome=AuditEvent.Outcome.FAILURE,
                reason=message,
            )
        return active

    return _claim_guarded(attempt, toolkits=toolkits, check=check)


def _claim_guarded(
    attempt: _Attempt,
    *,
    toolkits: Sequence[str],
    check: Callable[[ToolRouterSession | None], ToolRouterSession | None],
) -> SessionOperation | SessionResult:
    try:
        return _claim(attempt, toolkits=toolkits, check=check)
    except _Refusal as refusal:
        attempt.audit(
            outcome=refusal.audit_outcome,
            reason=refusal.reason,
            session=refusal.result.session,
            details={"result": refusal.result.outcome},
        )
        return refusal.result


def _remote_delete(
    session: ToolRouterSession,
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None,
    audit_ok: bool,
) -> bool:
    """Delete a superseded session at Composio, best effort; a failure is stored and audited.

    Returns whether it is gone. A session Composio no longer knows counts as gone.
    """
    try:
        composio_seam.delete_session(session.session_id)
    except composio_seam.ComposioNotFound:
        pass
    except composio_seam.ComposioError as exc:
        session.remote_delete_error = exc.message[:500]
        session.save(update_fields=["remote_delete_error"])
        audit.record(
            action="session.remote_delete",
            outcome=AuditEvent.Outcome.UNKNOWN
            if exc.outcome_unknown
            else AuditEvent.Outcome.FAILURE,
            actor=actor,
            request=request,
            end_user=session.end_user,
            session=session,
            reason=f"Deleting superseded session {session.session_id} at Composio failed: "
            f"{exc.message} It will be retried.",
        )
        return False
    records.mark_remote_deleted(session)
    if audit_ok:
        audit.record(
            action="session.remote_delete",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            request=request,
            end_user=session.end_user,
            session=session,
            reason=f"Deleted superseded session {session.session_id} at Composio.",
        )
    return True


def _guard(
    attempt: _Attempt, toolkits: object | None, *, validate: bool
) -> tuple[list[str] | None, SessionResult | None]:
    if not _actor_may(attempt.actor, _PERMISSION[attempt.kind]):
        return None, attempt.refused()
    if not validate:
        return None, None
    try:
        return toolkit_choices_clean(toolkits), None  # type: ignore[arg-type]
    except ValidationError as error:
        return None, attempt.rejected(error, toolkits)


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
    attempt = _Attempt(SessionOperation.Kind.CREATE, end_user, actor, request)
    slugs, refused = _guard(attempt, toolkits, validate=True)
    if refused is not None:
        return refused
    return _new_session(attempt, toolkits=slugs or [], replacing=False)


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
    attempt = _Attempt(SessionOperation.Kind.REFRESH, end_user, actor, request)
    if toolkits is None:
        current = (
            ToolRouterSession.objects.filter(
                end_user=end_user, status=ToolRouterSession.Status.ACTIVE
            )
            .values_list("toolkits", flat=True)
            .first()
        )
        if current is None:
            if not _actor_may(actor, _PERMISSION[attempt.kind]):
                return attempt.refused()
            message = f"Skipped {end_user.external_id}: they have no active session; use create."
            attempt.audit(
                outcome=AuditEvent.Outcome.FAILURE, reason=message, details={"result": "skipped"}
            )
            return attempt.result(Outcome.SKIPPED, message)
        toolkits = list(current)
    slugs, refused = _guard(attempt, toolkits, validate=True)
    if refused is not None:
        return refused
    return _new_session(attempt, toolkits=slugs or [], replacing=True)


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
    attempt = _Attempt(SessionOperation.Kind.CHANGE_TOOLKITS, session.end_user, actor, request)
    slugs, refused = _guard(attempt, toolkits, validate=True)
    if refused is not None:
        return refused
    slugs = slugs or []

    def check(active: ToolRouterSession | None) -> ToolRouterSession | None:
        if active is None or active.pk != session.pk:
            message = (
                f"Skipped {attempt.name}: session {session.short_id} is no longer active; "
                "reload the page."
            )
            raise _Refusal(
                attempt.result(Outcome.SKIPPED, message, active),
                audit_outcome=AuditEvent.Outcome.FAILURE,
                reason=message,
            )
        return active

    operation = _claim_guarded(attempt, toolkits=slugs, check=check)
    if isinstance(operation, SessionResult):
        return operation
    current = operation.session
    assert current is not None
    try:
        remote = composio_seam.update_session_toolkits(
            session_id=current.session_id,
            toolkits=slugs,
            expected_config_version=current.config_version,
        )
    except composio_seam.ComposioError as exc:
        return _failed(
            attempt,
            operation,
            exc,
            session=current,
            kept=f"Session {current.short_id} keeps {', '.join(current.toolkits)}.",
        )
    except Exception:
        _finish(operation, state=SessionOperation.State.UNKNOWN, error="Unexpected error.")
        attempt.audit(
            outcome=AuditEvent.Outcome.UNKNOWN,
            reason=f"An unexpected error interrupted the call for {attempt.name}.",
            session=current,
        )
        raise
    granted = list(remote.toolkits) or slugs
    before = list(current.toolkits)
    with transaction.atomic():
        current.toolkits = granted
        current.config_version = remote.config_version
        current.save(update_fields=["toolkits", "config_version"])
        records.store_toolkit_links(current, granted)
        _finish(
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
    return attempt.result(
        Outcome.SUCCEEDED,
        f"Changed the toolkits of {attempt.name}'s session {current.short_id} in place: "
        f"{', '.join(granted)}.",
        current,
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
    attempt = _Attempt(SessionOperation.Kind.DELETE, session.end_user, actor, request)
    _, refused = _guard(attempt, None, validate=False)
    if refused is not None:
        return refused

    def check(active: ToolRouterSession | None) -> ToolRouterSession | None:
        fresh = ToolRouterSession.objects.select_for_update().get(pk=session.pk)
        if fresh.status == ToolRouterSession.Status.DELETED:
            message = f"Skipped {attempt.name}: session {fresh.short_id} is already deleted."
            raise _Refusal(
                attempt.result(Outcome.SKIPPED, message, fresh),
                audit_outcome=AuditEvent.Outcome.FAILURE,
                reason=message,
            )
        return fresh

    operation = _claim_guarded(attempt, toolkits=[], check=check)
    if isinstance(operation, SessionResult):
        return operation
    target = operation.session
    assert target is not None
    already_gone = False
    try:
        composio_seam.delete_session(target.session_id)
    except composio_seam.ComposioNotFound:
        already_gone = True
    except composio_seam.ComposioError as exc:
        return _failed(
            attempt,
            operation,
            exc,
            session=target,
            kept=f"Session {target.short_id} is unchanged.",
        )
    with transaction.atomic():
        records.mark_deleted(target)
        _finish(operation, state=SessionOperation.State.SUCCEEDED)
        attempt.audit(
            outcome=AuditEvent.Outcome.SUCCESS,
            reason=f"Deleted {target.session_id}"
            + (" (Composio no longer knew it)." if already_gone else "."),
            session=target,
            details={"operation": str(operation.public_id), "already_gone": already_gone},
        )
    note = " (Composio no longer knew it)" if already_gone else ""
    return attempt.result(
        Outcome.SUCCEEDED,
        f"Deleted session {target.short_id} of {attempt.name}{note}; the record is kept.",
        target,
    )


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
        if _remote_delete(session, actor=actor, request=request, audit_ok=True):
            result.deleted.append(session.session_id)
        else:
            result.failed[session.session_id] = session.remote_delete_error
    return result


# --- End-user import ---------------------------------------------------------------------------

IMPORT_MAX_BYTES = 2 * 1024 * 1024
IMPORT_MAX_ROWS = 10_000
IMPORT_COLUMNS = ("external_id", "name", "email")


@dataclass(frozen=True)
class ImportRow:
    line: int
    external_id: str
    name: str
    email: str
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportPreview:
    """A parsed CSV: `error` if the file itself is malformed (then nothing may be written)."""

    valid: tuple[ImportRow, ...] = ()
    rejected: tuple[ImportRow, ...] = ()
    error: str = ""


def end_user_import_preview(*, content: bytes) -> ImportPreview:
    """Parse and check a CSV of end users (external_id, name, email) without writing anything.

    A malformed file (not UTF-8 text, wrong header, a row with the wrong number of columns, too
    big) gives `error`; otherwise each row is valid or rejected with its reasons (bad external id,
    duplicate in the file, already exists, bad email, name too long).
    """
    if len(content) > IMPORT_MAX_BYTES:
        return ImportPreview(error=f"The file is larger than {IMPORT_MAX_BYTES // 1024} KB.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return ImportPreview(error="The file is not UTF-8 text; save it as CSV (UTF-8).")
    if "\x00" in text:
        return ImportPreview(error="The file is not a CSV text file (it contains NUL bytes).")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        return ImportPreview(error=f"The file is not valid CSV: {exc}.")
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        return ImportPreview(error="The file is empty.")
    header = tuple(cell.strip().lower() for cell in rows[0])
    if header != IMPORT_COLUMNS:
        return ImportPreview(
            error="The first row must be the header external_id,name,email; found "
            + ",".join(rows[0])[:100]
            + "."
        )
    body = rows[1:]
    if not body:
        return ImportPreview(error="The file has a header but no rows.")
    if len(body) > IMPORT_MAX_ROWS:
        return ImportPreview(
            error=f"The file has {len(body)} rows; the limit is {IMPORT_MAX_ROWS}."
        )
    for number, row in enumerate(body, start=2):
        if len(row) != len(IMPORT_COLUMNS):
            return ImportPreview(
                error=f"Row {number} has {len(row)} columns; every row needs exactly 3 "
                "(external_id, name, email)."
            )

    existing = set(
        EndUser.objects.filter(external_id__in=[r[0] for r in body]).values_list(
            "external_id", flat=True
        )
    )
    seen: set[str] = set()
    valid: list[ImportRow] = []
    rejected: list[ImportRow] = []
    for number, (external_id, name, email) in enumerate(body, start=2):
        problems: list[str] = []
        problem = external_id_problem(external_id)
        if problem:
            problems.append(problem)
        elif external_id in seen:
            problems.append("This external id appears earlier in the file.")
        elif external_id in existing:
            problems.append("An end user with this external id already exists (left unchanged).")
        seen.add(external_id)
        if len(name) > 200:
            problems.append(f"The name is {len(name)} characters long; the limit is 200.")
        if email:
            try:
                validate_email(email)
            except ValidationError:
                problems.append("The email address is not valid.")
        row = ImportRow(number, external_id, name.strip(), email.strip(), tuple(problems))
        (rejected if problems else valid).append(row)
    return ImportPreview(valid=tuple(valid), rejected=tuple(rejected))


def end_user_import(
    *,
    content: bytes,
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None = None,
) -> tuple[ImportPreview, int]:
    """Create the valid rows of a CSV of end users, all in one transaction; skip rejected rows.

    Writes nothing if the file is malformed, or if the actor may not add end users. Returns the
    preview it acted on and how many end users it created. One audit event.
    """
    if not _actor_may(actor, "sessions_app.add_enduser"):
        audit.record(
            action="access.refused",
            outcome=AuditEvent.Outcome.REFUSED,
            actor=actor,
            request=request,
            reason="Importing end users needs the add end user permission.",
            details={"operation": "enduser.import"},
        )
        return ImportPreview(error="You may not add end users: permission denied."), 0
    preview = end_user_import_preview(content=content)
    if preview.error:
        audit.record(
            action="enduser.import",
            outcome=AuditEvent.Outcome.REJECTED,
            actor=actor,
            request=request,
            reason=preview.error,
        )
        return preview, 0
    try:
        with transaction.atomic():
            EndUser.objects.bulk_create(
                [
                    EndUser(external_id=r.external_id, display_name=r.name, email=r.email)
                    for r in preview.valid
                ]
            )
            audit.record(
                action="enduser.import",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=actor,
                request=request,
                reason=f"Imported {len(preview.valid)} end users; "
                f"{len(preview.rejected)} rows rejected.",
                details={
                    "created": len(preview.valid),
                    "rejected": [
                        {"line": r.line, "problems": list(r.problems)} for r in preview.rejected
                    ][:100],
                },
            )
    except IntegrityError:
        message = "Someone added some of these end users meanwhile; nothing was imported. Retry."
        audit.record(
            action="enduser.import",
            outcome=AuditEvent.Outcome.FAILURE,
            actor=actor,
            request=request,
            reason=message,
        )
        return ImportPreview(error=message), 0
    return preview, len(preview.valid)
