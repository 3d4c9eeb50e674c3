"""Revealing a session's full MCP URL: audited first, limited per staff user."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError
from django.http import HttpRequest
from django.utils import timezone

from sessions_app import trail
from sessions_app.models import AuditEvent, ToolRouterSession
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


def mcp_url_reveal(
    *, session: ToolRouterSession, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> Reveal:
    """The session's full MCP URL, only once the reveal is in the audit log.

    Refused (and audited) past SUPPORT_REVEALS_PER_HOUR successful reveals in the last hour;
    withheld if the audit event cannot be written. The caller checks the reveal permission.
    """
    limit = settings.SUPPORT_REVEALS_PER_HOUR
    fingerprint = mcp_url.fingerprint(session.mcp_url)

    def record(outcome: str, reason: str = "") -> None:
        trail.record(
            action="mcp_url.reveal",
            outcome=outcome,
            actor=actor,
            request=request,
            end_user=session.end_user,
            session=session,
            reason=reason,
            details={"fingerprint": fingerprint},
        )

    if mcp_url_reveals_in_last_hour(actor=actor) >= limit:
        record(AuditEvent.Outcome.REFUSED, f"Reveal limit of {limit} per hour reached.")
        return Reveal(
            withheld=Withheld.LIMIT,
            message=f"You have revealed {limit} MCP URLs in the last hour, the most allowed; "
            "try again later or ask a session admin.",
        )
    try:
        record(AuditEvent.Outcome.SUCCESS)
    except DatabaseError:
        # Fail closed: no audit record, no URL.
        logger.exception("reveal of session %s not audited; URL withheld", session.session_id)
        return Reveal(
            withheld=Withheld.UNAUDITED,
            message="The reveal could not be written to the audit log, so the URL is not shown. "
            "Try again in a moment.",
        )
    return Reveal(url=session.mcp_url)
