"""An end user's timeline on the support card: the audit events about them, newest first, with
who and when. One query a page, whatever the events (the audit table's
(end_user_external_id, -sequence) index), the same selection as the audit log filtered to the
user (`/audit/events/?end_user=<external id>`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sessions_app.models import AuditEvent, EndUser

TIMELINE_LIMIT = 20

# What the card calls each action; any other action is shown by its name.
ACTION_LABELS = {
    "session.create": "Session created",
    "session.refresh": "Session refreshed",
    "session.change_toolkits": "Toolkits changed",
    "session.delete": "Session deleted",
    "session.remote_delete": "Session deleted at Composio",
    "mcp_url.reveal": "MCP URL revealed",
    "connect_link.create": "Reconnect link sent",
    "account.disable": "Account disabled",
    "account.enable": "Account enabled",
    "tool_execution.view": "Execution log opened",
    "enduser.import": "Imported",
    "access.refused": "Refused",
    "input.rejected": "Input rejected",
}


@dataclass(frozen=True)
class TimelineEntry:
    sequence: int
    at: dt.datetime
    action: str
    label: str
    outcome: str
    actor: str
    session_ref: str
    toolkits: list[str]
    reason: str


@dataclass(frozen=True)
class Timeline:
    entries: list[TimelineEntry]
    # The `before` of the next (older) page; None when there is none.
    older_than: int | None


def end_user_timeline(
    *, end_user: EndUser, before: int | None = None, limit: int = TIMELINE_LIMIT
) -> Timeline:
    """The user's latest `limit` audit events (older than sequence `before` when given)."""
    events = AuditEvent.objects.filter(end_user_external_id=end_user.external_id)
    if before is not None:
        events = events.filter(sequence__lt=before)
    rows = list(
        events.order_by("-sequence").values_list(
            "sequence",
            "created_at",
            "action",
            "outcome",
            "actor_username",
            "session_ref",
            "toolkit_slugs",
            "reason",
        )[: limit + 1]
    )
    more = len(rows) > limit
    entries = [
        TimelineEntry(
            sequence=row[0],
            at=row[1],
            action=row[2],
            label=ACTION_LABELS.get(row[2], row[2]),
            outcome=row[3],
            actor=row[4] or "system",
            session_ref=row[5],
            toolkits=row[6].split(),
            reason=row[7],
        )
        for row in rows[:limit]
    ]
    return Timeline(entries=entries, older_than=entries[-1].sequence if more else None)
