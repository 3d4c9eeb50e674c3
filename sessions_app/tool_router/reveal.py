"""Revealing a session's full MCP URL: audited first, limited per staff user.

The limit is atomic: a reveal takes its staff user's RevealLock row, counts that user's
successful reveals of the last hour in the audit trail and writes its own event, all in one
transaction. The next reveal by the same user waits for the lock and counts the committed event,
so exactly SUPPORT_REVEALS_PER_HOUR reveals pass in any hour, however many arrive at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, transaction
from django.http import HttpRequest
from django.utils import timezone

from sessions_app import trail
from sessions_app.models import AuditEvent, RevealLock, ToolRouterSession
from sessions_app.tool_router import mcp_url

logger = logging.getLogger(__name__)


class Withheld:
    """Why a reveal handed out no URL."""

    NONE = ""
    LIMIT = "limit"  # the staff user reached SUPPORT_REVEALS_PER_HOUR
    UNAUDITED = "unaudited"  # the audit event could not be written: fail closed


@dataclass(frozen=True)
class Reveal:
    url: str = ""
    withheld: str = Withheld.NONE
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.withheld


def mcp_url_reveals_in_last_hour(*, actor: AbstractBaseUser) -> int:
    """Successful reveals by this staff user in the last hour, counted from the audit log."""
    return AuditEvent.objects.filter(
        action="mcp_url.reveal",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        created_at__gte=timezone.now() - timedelta(hours=1),
    ).count()


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
    """
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
        return Reveal(
            withheld=Withheld.LIMIT,
            message=f"You have revealed {limit} MCP URLs in the last hour, the most allowed; "
            "try again later or ask a session admin.",
        )
    return Reveal(url=session.mcp_url)
