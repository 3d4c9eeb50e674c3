"""The intent behind every session service, and the steps they share.

Each service call is an `Attempt` with exactly one audit event. Before calling Composio it
commits an intent (`SessionOperation`, state pending): that row is the per-end-user lock, so no
transaction is held open across the call. What Composio answered is then stored in one short
transaction; a call that may have acted leaves the intent `unknown` for reconciliation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, FilteredRelation, Q
from django.http import HttpRequest
from django.utils import timezone

from sessions_app import access, trail
from sessions_app.composio import seam as composio_seam
from sessions_app.models import AuditEvent, EndUser, SessionOperation, ToolRouterSession
from sessions_app.tool_router import drift, rate_limit, toolkit_catalog
from sessions_app.tool_router.mcp_url import short_id
from sessions_app.tool_router.results import Cause, Outcome, SessionResult

T = TypeVar("T")

AUDIT_ACTION = {
    SessionOperation.Kind.CREATE: "session.create",
    SessionOperation.Kind.REFRESH: "session.refresh",
    SessionOperation.Kind.CHANGE_TOOLKITS: "session.change_toolkits",
    SessionOperation.Kind.DELETE: "session.delete",
}


VERB = {
    SessionOperation.Kind.CREATE: "create a session",
    SessionOperation.Kind.REFRESH: "refresh the session",
    SessionOperation.Kind.CHANGE_TOOLKITS: "change the session's toolkits",
    SessionOperation.Kind.DELETE: "delete the session",
}


def stale_after() -> timedelta:
    # A pending intent older than this belongs to a process that died mid-call; it no longer
    # locks the end user (its outcome is then unknown and left to reconciliation).
    return timedelta(seconds=settings.TOOL_ROUTER_OPERATION_STALE_SECONDS)


class Skip(Exception):
    """Raised inside the claim transaction; carries the result to return."""

    def __init__(self, result: SessionResult, *, audit_outcome: str, reason: str) -> None:
        super().__init__(result.message)
        self.result = result
        self.audit_outcome = audit_outcome
        self.reason = reason


@dataclass
class Attempt:
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
        trail.record(
            action=action or AUDIT_ACTION[self.kind],
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

    def skip(self, message: str, session: ToolRouterSession | None = None) -> Skip:
        """A `Skip` to raise from a claim check: nothing was sent, and the result says why."""
        return Skip(
            self.result(Outcome.SKIPPED, message, session),
            audit_outcome=AuditEvent.Outcome.FAILURE,
            reason=message,
        )

    def refused(self) -> SessionResult:
        if self.kind == SessionOperation.Kind.CREATE:
            message = f"You may not create a session for {self.name}: permission denied."
        else:
            message = f"You may not {VERB[self.kind]} of {self.name}: permission denied."
        access.refuse(
            operation=f"session.{self.kind}",
            reason=message,
            actor=self.actor,
            request=self.request,
            missing=[access.SESSION_PERMISSION[self.kind]],
            end_user=self.end_user,
        )
        return self.result(Outcome.REFUSED, message)

    def rejected(self, error: ValidationError, toolkits: object) -> SessionResult:
        cause = toolkit_catalog.validation_message(error)
        message = f"Nothing was changed for {self.name}: {cause}"
        self.audit(
            action="input.rejected",
            outcome=AuditEvent.Outcome.REJECTED,
            reason=message,
            details={"operation": self.kind, "toolkits": printable(toolkits)},
        )
        return self.result(Outcome.FAILED, message)


def printable(toolkits: object) -> list[str]:
    if isinstance(toolkits, Iterable) and not isinstance(toolkits, str | bytes):
        return [str(t)[:100] for t in list(toolkits)[:50]]
    return [str(toolkits)[:100]]


def claim(
    attempt: Attempt,
    *,
    toolkits: Sequence[str] | None,
    check: Callable[[ToolRouterSession | None], ToolRouterSession | None],
) -> SessionOperation:
    """Commit the intent, which is also the per-end-user lock.

    The end user's row is locked (PostgreSQL `SELECT ... FOR UPDATE`; SQLite's IMMEDIATE
    transactions serialise writers) while looking for another pending intent, and the partial
    unique constraint on pending intents is the backstop. `check` sees the current active
    session and returns the session to act on, or raises `Skip`. `toolkits` None: the intent is
    for the toolkits the session `check` returned holds.
    """
    pending = SessionOperation.objects.filter(
        end_user=attempt.end_user, state=SessionOperation.State.PENDING
    )
    try:
        with transaction.atomic():
            # NO KEY UPDATE: serialises claims, yet lets another attempt's store transaction
            # take the FOR KEY SHARE its deferred foreign-key checks need at COMMIT (a plain
            # FOR UPDATE here deadlocked with it: claim waits for that attempt's intent row,
            # the attempt's COMMIT waits for this end-user row).
            #
            # Usually nobody else is at this user: one statement locks them and reads their
            # active session and whether an intent is pending. Its snapshot is taken before it
            # locks, so it must not wait: a holder (another claim, or reconciliation, which
            # writes under this lock with no intent of its own) would commit after it. SKIP
            # LOCKED: when someone holds the user, or an intent is pending (its store may
            # commit while it is settled), the claim waits for the lock and then reads each
            # thing in a statement of its own, which sees what they committed.
            locked = (
                EndUser.objects.select_for_update(no_key=True, of=("self",), skip_locked=True)
                .filter(pk=attempt.end_user.pk)
                .only("pk")
                .annotate(
                    pending=Exists(pending),
                    active=FilteredRelation(
                        "sessions", condition=Q(sessions__status=ToolRouterSession.Status.ACTIVE)
                    ),
                    **{name: F(f"active__{column}") for column, name in _ACTIVE.items()},
                )
                .first()
            )
            if locked is not None and not locked.pending:
                active = _active_from(locked, attempt.end_user)
            else:
                if locked is None:  # held by someone else (or gone): wait for it
                    list(
                        EndUser.objects.select_for_update(no_key=True)
                        .filter(pk=attempt.end_user.pk)
                        .values_list("pk", flat=True)
                    )
                _settle_pending(attempt, pending.select_for_update())
                active = (
                    ToolRouterSession.objects.select_for_update()
                    .filter(end_user=attempt.end_user, status=ToolRouterSession.Status.ACTIVE)
                    .first()
                )
            session = check(active)
            if toolkits is None:
                assert session is not None
                toolkits = session.toolkits
            return SessionOperation.objects.create(
                kind=attempt.kind,
                end_user=attempt.end_user,
                session=session,
                toolkits=list(toolkits),
                actor=attempt.actor if is_user(attempt.actor) else None,
            )
    except IntegrityError as exc:
        # Another request claimed this end user between our check and our insert.
        raise in_progress(attempt) from exc


# The active session's columns as the claim's statement names them.
_ACTIVE = {
    field.attname: f"active_{field.attname}" for field in ToolRouterSession._meta.concrete_fields
}


def _active_from(locked: EndUser, end_user: EndUser) -> ToolRouterSession | None:
    """The active session the claim's statement read (None when the user has none)."""
    if getattr(locked, _ACTIVE["id"]) is None:
        return None
    values = [getattr(locked, name) for name in _ACTIVE.values()]
    session = ToolRouterSession.from_db(ToolRouterSession.objects.db, list(_ACTIVE), values)
    session.end_user = end_user  # the same row: its relation, not a second read
    return session


def _settle_pending(attempt: Attempt, pending: Iterable[SessionOperation]) -> None:
    """Raise `in_progress` if one of the user's pending intents is live; an intent pending long
    after its call should have ended is marked unknown (its process died mid-call)."""
    cutoff = timezone.now() - stale_after()
    live = False
    for operation in pending:
        if operation.created_at >= cutoff:
            live = True
            continue
        operation.state = SessionOperation.State.UNKNOWN
        operation.error = "Abandoned: still pending long after its call should have ended."
        operation.finished_at = timezone.now()
        operation.save(update_fields=["state", "error", "finished_at"])
    if live:
        raise in_progress(attempt)


def is_user(actor: object) -> bool:
    return actor is not None and bool(getattr(actor, "is_authenticated", False))


def in_progress(attempt: Attempt) -> Skip:
    message = (
        f"Another change to {attempt.name}'s session is already in progress; "
        "wait for it to finish, then reload."
    )
    return Skip(
        attempt.result(Outcome.IN_PROGRESS, message),
        audit_outcome=AuditEvent.Outcome.FAILURE,
        reason=message,
    )


def finish(
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


def failed(
    attempt: Attempt,
    operation: SessionOperation,
    exc: composio_seam.ComposioError,
    *,
    session: ToolRouterSession | None,
    kept: str,
) -> SessionResult:
    """Record a call Composio refused or may have acted on; nothing else is written."""
    unknown = exc.outcome_unknown
    finish(
        operation,
        state=SessionOperation.State.UNKNOWN if unknown else SessionOperation.State.FAILED,
        error=exc.message,
    )
    create = attempt.kind == SessionOperation.Kind.CREATE
    verb = "create a session for" if create else f"{VERB[attempt.kind]} of"
    message = f"Could not {verb} {attempt.name}: {exc.message}"
    if kept:
        message += f" {kept}"
    # Composio does not know the session acted on (create and refresh act on none; delete takes
    # not found as done): it is stale, and only a refresh helps.
    unknown_session = (
        isinstance(exc, composio_seam.ComposioNotFound)
        and attempt.kind == SessionOperation.Kind.CHANGE_TOOLKITS
        and session is not None
    )
    if unknown_session:
        message += f" {drift.NOT_KNOWN}"
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
    if unknown_session:
        assert session is not None
        drift.mark_stale(
            session, via=AUDIT_ACTION[attempt.kind], actor=attempt.actor, request=attempt.request
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


def call(
    attempt: Attempt,
    operation: SessionOperation,
    send: Callable[[], T],
    *,
    session: ToolRouterSession | None,
    kept: str,
) -> T | SessionResult:
    """Call Composio for the claimed intent, paid from the shared budget when it is a web
    request's (`rate_limit.draw`). A failure, or a spent budget (nothing sent), is recorded on
    the intent and audited, and comes back as the result to return; an unexpected error leaves
    the intent unknown."""
    try:
        rate_limit.draw(attempt.request)
        return send()
    except composio_seam.ComposioError as exc:
        return failed(attempt, operation, exc, session=session, kept=kept)
    except Exception:
        finish(operation, state=SessionOperation.State.UNKNOWN, error="Unexpected error.")
        attempt.audit(
            outcome=AuditEvent.Outcome.UNKNOWN,
            reason=f"An unexpected error interrupted the call for {attempt.name}.",
            session=session,
        )
        raise


class Rejected(Exception):
    """Raised inside the claim transaction when the toolkits it read fail validation."""

    def __init__(self, error: ValidationError, toolkits: object) -> None:
        super().__init__(str(error))
        self.error = error
        self.toolkits = toolkits


def claim_guarded(
    attempt: Attempt,
    *,
    toolkits: Sequence[str] | None,
    check: Callable[[ToolRouterSession | None], ToolRouterSession | None],
) -> SessionOperation | SessionResult:
    try:
        return claim(attempt, toolkits=toolkits, check=check)
    except Rejected as rejection:
        return attempt.rejected(rejection.error, rejection.toolkits)
    except Skip as refusal:
        attempt.audit(
            outcome=refusal.audit_outcome,
            reason=refusal.reason,
            session=refusal.result.session,
            details={"result": refusal.result.outcome},
        )
        return refusal.result


@dataclass(frozen=True)
class Answered(Generic[T]):
    """A claimed intent about an existing session, and what Composio answered for it."""

    operation: SessionOperation
    session: ToolRouterSession
    answer: T


def claim_and_call(
    attempt: Attempt,
    *,
    toolkits: Sequence[str],
    check: Callable[[ToolRouterSession | None], ToolRouterSession | None],
    send: Callable[[ToolRouterSession], T],
    kept: Callable[[ToolRouterSession], str],
) -> Answered[T] | SessionResult:
    """Claim the intent on the session `check` picks (`claim_guarded`), then `send` Composio the
    call about it (`call`; `kept` says what stays as it was if that fails). What Composio
    answered, or the result to return."""
    operation = claim_guarded(attempt, toolkits=toolkits, check=check)
    if isinstance(operation, SessionResult):
        return operation
    session = operation.session
    assert session is not None
    answer = call(attempt, operation, lambda: send(session), session=session, kept=kept(session))
    if isinstance(answer, SessionResult):
        return answer
    return Answered(operation, session, answer)


def guard(
    attempt: Attempt, toolkits: object | None, *, validate: bool
) -> tuple[list[str] | None, SessionResult | None]:
    if not access.may(attempt.actor, access.SESSION_PERMISSION[attempt.kind]):
        return None, attempt.refused()
    if not validate:
        return None, None
    try:
        return toolkit_catalog.toolkit_choices_clean(toolkits), None  # type: ignore[arg-type]
    except ValidationError as error:
        return None, attempt.rejected(error, toolkits)


def claim_new_session(
    attempt: Attempt, *, toolkits: Sequence[str] | None, old_expected: bool
) -> SessionOperation | SessionResult:
    """Claim the intent for a create (`old_expected` False: skip a user who has a session) or a
    refresh (True: skip a user who has none); the claimed intent, or the result to return.

    `toolkits` None (a refresh that keeps them): the active session's toolkits, read under the
    claim's lock and validated again there (a toolkit disallowed since must be dropped
    explicitly), so a change made meanwhile is never undone and nothing is read twice."""

    def check(active: ToolRouterSession | None) -> ToolRouterSession | None:
        if not old_expected and active is not None:
            message = (
                f"Skipped {attempt.name}: they already have an active session "
                f"({short_id(active.session_id)}); use refresh to replace it."
            )
            raise attempt.skip(message, active)
        if old_expected and active is None:
            message = f"Skipped {attempt.name}: they have no active session; use create."
            raise attempt.skip(message)
        if toolkits is None and active is not None:
            try:
                active.toolkits = toolkit_catalog.toolkit_choices_clean(active.toolkits)
            except ValidationError as error:
                raise Rejected(error, active.toolkits) from error
        return active

    return claim_guarded(attempt, toolkits=toolkits, check=check)
