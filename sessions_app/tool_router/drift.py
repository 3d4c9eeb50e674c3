"""Drift: sessions the console stores that Composio no longer knows.

Composio cannot list sessions, so the console notices a session deleted in Composio's dashboard,
expired, or lost to another API key only by asking for it. Two paths ask:

- `verify_sessions` (the `verify_sessions` command, and the task workers every
  DRIFT_VERIFY_SECONDS once `verify_sessions --schedule` booked it) reads each active session
  (GET) oldest-checked first, paying for each request from the shared Composio budget
  (`rate_limit.take`). `verified_at` is its checkpoint: a session Composio answered for (known,
  or not found) gets it, so a run that stops (killed, rate limited, its batch done) is continued
  by the next run from the sessions checked longest ago. A fault (timeout, 5xx, 429, unreachable)
  marks nothing and leaves `verified_at` alone: that session is first in line next time.
- the services that call Composio about a session for a person (connections check, change
  toolkits) call `mark_stale` the moment Composio answers not found.

`stale_since` is the mark: the card, the lookup, the admin lists, `/healthz`, the support landing
page and `reconcile_sessions` show it; a reveal of a stale session is withheld
(`tool_router.reveal`); refresh (or the admin's "re-create missing sessions" bulk job) gives the
user a new session. A stale session Composio answers for again is un-marked.

Marking writes one `session.stale` audit event (`session.known_again` when un-marked), with the
masked session id in the reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from sessions_app import trail
from sessions_app.composio import seam as composio_seam
from sessions_app.models import AuditEvent, EndUser, ToolRouterSession
from sessions_app.tool_router import config_history, mcp_url, rate_limit, sweeps

logger = logging.getLogger(__name__)

Actor = AbstractBaseUser | AnonymousUser | None

STALE_ACTION = "session.stale"
KNOWN_AGAIN_ACTION = "session.known_again"

# What a person is told wherever a stale session shows up.
NOT_KNOWN = (
    "Composio no longer knows this session (deleted in Composio's dashboard, expired, or "
    "created under another API key); its MCP URL does not work. Refresh the session to give "
    "the user a new one."
)


# --- The mark ----------------------------------------------------------------------------------


def stale_sessions() -> QuerySet[ToolRouterSession]:
    """Active sessions Composio said it does not know."""
    return ToolRouterSession.objects.filter(
        status=ToolRouterSession.Status.ACTIVE, stale_since__isnull=False
    )


def stale_count() -> int:
    return stale_sessions().count()


def mark_stale(
    session: ToolRouterSession,
    *,
    via: str,
    actor: Actor = None,
    request: HttpRequest | None = None,
) -> bool:
    """Record that Composio answered not found for this active session: `stale_since` (kept
    from the first time) and `verified_at` now, and one `session.stale` event the first time.
    Returns whether it was newly marked. `via` names what noticed (verify, connections, ...)."""
    masked = mcp_url.masked_id_text(session.session_id)
    return _mark(
        session,
        flagged=ToolRouterSession.objects.filter(
            pk=session.pk, status=ToolRouterSession.Status.ACTIVE, stale_since__isnull=True
        ),
        stale=True,
        action=STALE_ACTION,
        outcome=AuditEvent.Outcome.FAILURE,
        reason=f"Composio no longer knows session {masked} of "
        f"{session.end_user.external_id}; marked stale (noticed by {via}).",
        details={"via": via, "masked_id": masked},
        actor=actor,
        request=request,
    )


def mark_known(
    session: ToolRouterSession,
    *,
    via: str,
    actor: Actor = None,
    request: HttpRequest | None = None,
) -> bool:
    """Record that Composio answered for the session: `verified_at` now, and a stale mark
    cleared (with one `session.known_again` event). Returns whether it had been stale."""
    masked = mcp_url.masked_id_text(session.session_id)
    return _mark(
        session,
        flagged=ToolRouterSession.objects.filter(pk=session.pk, stale_since__isnull=False),
        stale=False,
        action=KNOWN_AGAIN_ACTION,
        outcome=AuditEvent.Outcome.SUCCESS,
        reason=f"Composio knows session {masked} of {session.end_user.external_id} "
        f"again; the stale mark is cleared (noticed by {via}).",
        details={"via": via, "masked_id": masked},
        actor=actor,
        request=request,
    )


def _mark(
    session: ToolRouterSession,
    *,
    flagged: QuerySet[ToolRouterSession],
    stale: bool,
    action: str,
    outcome: str,
    reason: str,
    details: dict[str, Any],
    actor: Actor,
    request: HttpRequest | None,
) -> bool:
    """Stamp `verified_at` now; where `flagged` still matches (the mark changes), also set
    `stale_since` (now if `stale`, else None) and write the one audit event, in the same
    transaction. Returns whether the mark changed."""
    now = timezone.now()
    with transaction.atomic():
        changed = flagged.update(stale_since=now if stale else None, verified_at=now)
        if changed:
            trail.record(
                action=action,
                outcome=outcome,
                actor=actor,
                request=request,
                end_user=session.end_user,
                session=session,
                reason=reason,
                details=details,
            )
        else:
            ToolRouterSession.objects.filter(pk=session.pk).update(verified_at=now)
    session.refresh_from_db(fields=["stale_since", "verified_at", "status"])
    return bool(changed)


# --- Verifying ---------------------------------------------------------------------------------


class Found:
    """What one check found (the first word of its progress line)."""

    KNOWN = "known"  # Composio answered for it
    STALE = "stale"  # Composio said not found: marked stale
    UNCHECKED = "unchecked"  # a fault: nothing marked, left for the next run
    GONE = "gone"  # no longer active here by the time its turn came: not asked


@dataclass(frozen=True)
class VerifyItem:
    session: ToolRouterSession
    found: str
    message: str

    def line(self) -> str:
        masked = mcp_url.masked_id_text(self.session.session_id)
        name = self.session.end_user.external_id
        return f"{self.found.upper():<10} {masked} ({name}): {self.message}"


@dataclass
class VerifyReport(sweeps.SweepRun[VerifyItem]):
    known: int = 0
    stale: int = 0  # found unknown (newly or again)
    newly_stale: int = 0
    known_again: int = 0
    could_not_check: int = 0
    changed_outside: int = 0  # known, at a config version no audit event explains
    gone: int = 0

    @property
    def checked(self) -> int:
        return self.known + self.stale

    def summary(self) -> str:
        if not self.queued:
            return "No active session to verify."
        parts = [
            f"Checked {self.checked} of {self.queued} active sessions: {self.known} known to "
            f"Composio, {self.stale} not known (stale; {self.newly_stale} newly marked)",
        ]
        if self.known_again:
            parts.append(f"{self.known_again} known again (stale mark cleared)")
        if self.changed_outside:
            parts.append(
                f"{self.changed_outside} changed outside the console (on the access report)"
            )
        parts.append(f"{self.could_not_check} could not be checked (left for the next run)")
        if self.gone:
            parts.append(f"{self.gone} no longer active")
        text = ", ".join(parts) + "."
        if self.stopped:
            text += f" Stopped early: {self.stopped}; {self.not_reached} not reached."
        return text


def _queue(*, end_user: EndUser | None, before: object, limit: int | None) -> list[int]:
    """Active sessions not checked since `before`, oldest-checked first (never checked first)."""
    queue = ToolRouterSession.objects.filter(status=ToolRouterSession.Status.ACTIVE).filter(
        Q(verified_at__isnull=True) | Q(verified_at__lt=before)
    )
    if end_user is not None:
        queue = queue.filter(end_user=end_user)
    ordered = queue.order_by(F("verified_at").asc(nulls_first=True), "pk").values_list(
        "pk", flat=True
    )
    return list(ordered[:limit] if limit is not None else ordered)


def verify_sessions(
    *,
    limit: int | None = None,
    end_user: EndUser | None = None,
    on_item: Callable[[VerifyItem], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> VerifyReport:
    """Check up to `limit` active sessions against Composio (one GET each, paid from the shared
    budget), oldest-checked first: known -> `verified_at` now (and un-marked if stale); not found
    -> marked stale; a fault -> nothing marked, counted as could not check. Stops early on a 429
    (Composio asked to slow down) or after sweeps.STOP_AFTER_FAULTS faults in a row; the next run
    continues from the sessions checked longest ago. `on_item` sees each result as it comes."""
    report = VerifyReport()

    def load(pk: int) -> ToolRouterSession | None:
        session = ToolRouterSession.objects.select_related("end_user").filter(pk=pk).first()
        if session is None or session.status != ToolRouterSession.Status.ACTIVE:
            report.gone += 1
            return None
        return session

    def pay() -> bool:
        rate_limit.take(1, sleep=sleep)
        return True

    sweeps.sweep(
        _queue(end_user=end_user, before=timezone.now(), limit=limit),
        report,
        load=load,
        pay=pay,
        check=lambda session: _check(session, report, sleep=sleep),
        on_item=on_item,
    )
    return report


def _check(
    session: ToolRouterSession, report: VerifyReport, *, sleep: Callable[[float], None]
) -> tuple[VerifyItem, composio_seam.ComposioError | None]:
    try:
        remote = composio_seam.get_session(session.session_id)
    except composio_seam.ComposioNotFound:
        report.stale += 1
        if mark_stale(session, via="verify_sessions"):
            report.newly_stale += 1
            message = "Composio no longer knows it; marked stale."
        else:
            message = "Composio still does not know it (stale since "
            message += f"{session.stale_since:%Y-%m-%d %H:%M} UTC)."
        return VerifyItem(session, Found.STALE, message), None
    except composio_seam.ComposioError as exc:
        report.could_not_check += 1
        logger.info("verify: session %s not checked: %s", session.pk, exc.message)
        said = mcp_url.mask_ids_in(exc.message, [session.session_id])
        return VerifyItem(session, Found.UNCHECKED, f"{said} Not marked."), exc
    report.known += 1
    message = "Composio knows it."
    if mark_known(session, via="verify_sessions"):
        report.known_again += 1
        message = "Composio knows it again; stale mark cleared."
    if _new_version(session, remote.config_version):
        message += " " + _read_history(session, report, sleep=sleep)
    return VerifyItem(session, Found.KNOWN, message), None


def _new_version(session: ToolRouterSession, version: int | None) -> bool:
    """Composio's config version is past what the console stored (it stores the version of each
    change it makes) and no stored finding names it yet: someone may have changed the session
    elsewhere. Version 1 is the create, which the console always made."""
    if version is None or version <= (session.config_version or 1):
        return False
    return version not in {v.get("version") for v in session.config_unexplained or []}


def _read_history(
    session: ToolRouterSession, report: VerifyReport, *, sleep: Callable[[float], None]
) -> str:
    """Read the session's config history (one more request from the budget) and store what no
    audit event explains, for the access report's finding."""
    rate_limit.take(1, sleep=sleep)
    history = config_history.session_config_history(session, request=None)
    if history.error:
        return f"Its config history could not be read: {history.error}"
    unexplained = [r.version.version for r in history.rows if not r.explained]
    if not unexplained:
        return "Its configuration changed through the console only."
    report.changed_outside += 1
    versions = ", ".join(str(v) for v in sorted(unexplained))
    return f"Changed outside the console: config version {versions} (on the access report)."
