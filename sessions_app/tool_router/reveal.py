"""Revealing a session's full MCP URL: audited first, limited per staff user.

The limit is atomic: a reveal takes its staff user's RevealLock row, counts that user's
successful reveals of the last hour in the audit trail and writes its own event, all in one
transaction. The next reveal by the same user waits for the lock and counts the committed event,
so exactly SUPPORT_REVEALS_PER_HOUR reveals pass in any hour, however many arrive at once.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import ngettext

from sessions_app import trail
from sessions_app.models import AuditEvent, RevealLock, ToolRouterSession
from sessions_app.tool_router import drift, mcp_url

logger = logging.getLogger(__name__)

# SUPPORT_REVEALS_PER_HOUR counts the successful reveals of this sliding window.
REVEAL_WINDOW = timedelta(hours=1)


class Withheld:
    """Why a reveal handed out no URL."""

    NONE = ""
    LIMIT = "limit"  # the staff user reached SUPPORT_REVEALS_PER_HOUR
    UNAUDITED = "unaudited"  # the audit event could not be written: fail closed
    STALE = "stale"  # Composio no longer knows the session: its URL would not work


@dataclass(frozen=True)
class Reveal:
    url: str = ""
    withheld: str = Withheld.NONE
    message: str = ""
    retry_after: int = 0  # seconds until the limit lets this user reveal again (LIMIT only)

    @property
    def ok(self) -> bool:
        return not self.withheld


def mcp_url_reveals_in_last_hour(*, actor: AbstractBaseUser) -> int:
    """Successful reveals by this staff user in the last hour, counted from the audit log."""
    return AuditEvent.objects.filter(
        action="mcp_url.reveal",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        created_at__gte=timezone.now() - REVEAL_WINDOW,
    ).count()


def next_reveal_at(*, actor: AbstractBaseUser, limit: int) -> datetime:
    """When this staff user may reveal again: the moment enough of the last hour's reveals have
    aged out of the window to leave room for one more."""
    recent = AuditEvent.objects.filter(
        action="mcp_url.reveal",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        created_at__gte=timezone.now() - REVEAL_WINDOW,
    ).order_by("-created_at")
    # The limit-th newest reveal is the one whose leaving the window frees a place.
    freeing = recent.values_list("created_at", flat=True)[max(limit, 1) - 1 : max(limit, 1)]
    moment = next(iter(freeing), None)
    return (moment or timezone.now()) + REVEAL_WINDOW


def _limit_reached(actor: AbstractBaseUser, limit: int) -> Reveal:
    at = next_reveal_at(actor=actor, limit=limit)
    seconds = max(1, math.ceil((at - timezone.now()).total_seconds()))
    minutes = math.ceil(seconds / 60)
    when = ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    return Reveal(
        withheld=Withheld.LIMIT,
        message=f"You have revealed {limit} MCP URLs in the last hour, the most allowed; "
        f"try again in {when} (at {at:%H:%M} UTC) or ask a session admin.",
        retry_after=seconds,
    )


def _lock_reveals_of(actor: AbstractBaseUser) -> None:
    """Hold this staff user's reveal lock until the surrounding transaction ends.

    PostgreSQL: a row lock on the user's RevealLock (made on first use; a concurrent first insert
    is ignored, not an error). SQLite ignores FOR UPDATE, but its IMMEDIATE transactions
    (console/settings.py) already admit one writer at a time.
    """
    RevealLock.objects.bulk_create([RevealLock(user_id=actor.pk)], ignore_conflicts=True)
    RevealLock.objects.select_for_update().get(user_id=actor.pk)


def mcp_url_reveal(
    *, session: ToolRouterSession, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> Reveal:
    """The session's full MCP URL, only once the reveal is in the audit log.

    Refused (and audited) past SUPPORT_REVEALS_PER_HOUR successful reveals in the last hour;
    withheld if the audit event cannot be written or committed. The caller checks the reveal
    permission, and calls this outside any transaction that has written to the audit trail
    (the lock order is: this user's reveal lock, then the trail's chain lock).

    A stale session (Composio said it does not know it: `drift`) is withheld, not revealed: its
    URL would not work, and handing it out quietly sends the user's agent to a dead end. The
    event (a failure, with `stale` in its details) records the attempt; it does not count
    towards the limit. No call to Composio is made: reveal works while Composio is down.
    """
    if session.stale_since is not None:
        return _withhold_stale(session, actor, request)
    limit = settings.SUPPORT_REVEALS_PER_HOUR
    record = trail.session_recorder(
        "mcp_url.reveal",
        session,
        actor=actor,
        request=request,
        details={"fingerprint": mcp_url.fingerprint(session.mcp_url)},
    )

    try:
        with transaction.atomic():
            _lock_reveals_of(actor)
            over_limit = mcp_url_reveals_in_last_hour(actor=actor) >= limit
            if over_limit:
                record(AuditEvent.Outcome.REFUSED, f"Reveal limit of {limit} per hour reached.")
            else:
                record(AuditEvent.Outcome.SUCCESS)
    except DatabaseError:
        # Fail closed: no audit record, no URL.
        logger.exception("reveal of session %s not audited; URL withheld", session.session_id)
        return Reveal(
            withheld=Withheld.UNAUDITED,
            message="The reveal could not be written to the audit log, so the URL is not shown. "
            "Try again in a moment.",
        )
    if over_limit:
        return _limit_reached(actor, limit)
    return Reveal(url=session.mcp_url)


def _withhold_stale(
    session: ToolRouterSession, actor: AbstractBaseUser, request: HttpRequest | None
) -> Reveal:
    since = session.stale_since
    assert since is not None
    try:
        trail.session_recorder(
            "mcp_url.reveal",
            session,
            actor=actor,
            request=request,
            details={
                "fingerprint": mcp_url.fingerprint(session.mcp_url),
                "stale": True,
                "stale_since": since.isoformat(),
            },
        )(
            AuditEvent.Outcome.FAILURE,
            "Not revealed: Composio no longer knows this session (stale since "
            f"{since:%Y-%m-%d %H:%M} UTC).",
        )
    except DatabaseError:
        logger.exception("stale reveal of session %s not audited", session.pk)
        return Reveal(
            withheld=Withheld.UNAUDITED,
            message="The reveal could not be written to the audit log, so the URL is not shown. "
            "Try again in a moment.",
        )
    return Reveal(
        withheld=Withheld.STALE,
        message=f"Not revealed: {drift.NOT_KNOWN} (Stale since {since:%Y-%m-%d %H:%M} UTC.)",
    )
