"""An end user's timeline on the support card: the audit events about them, newest first, with
who and when. One query a page, whatever the events (the audit table's
(end_user_external_id, -sequence) index), the same selection as the audit log filtered to the
user (`/audit/events/?end_user=<external id>`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import QuerySet

from sessions_app.models import AuditEvent, EndUser
from sessions_app.tool_router.prepared import PreparedQuery

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


def _build_events(limit: int, *, external_id: str, before: int | None = None) -> QuerySet:
    events = AuditEvent.objects.filter(end_user_external_id=external_id)
    if before is not None:
        events = events.filter(sequence__lt=before)
    return events.order_by("-sequence").values(
        "sequence",
        "created_at",
        "action",
        "outcome",
        "actor_username",
        "session_ref",
        "toolkit_slugs",
        "reason",
    )[: limit + 1]


_events = PreparedQuery(_build_events)


def end_user_timeline(
    *, end_user: EndUser, before: int | None = None, limit: int = TIMELINE_LIMIT
) -> Timeline:
    """The user's latest `limit` audit events (older than sequence `before` when given), in one
    prepared query (`prepared.PreparedQuery`)."""
    # A first page and an older one are two shapes: the values given differ.
    paging = {} if before is None else {"before": before}
    rows = _events.run(limit, external_id=end_user.external_id, **paging)
    more = len(rows) > limit
    entries = [
        TimelineEntry(
            sequence=row["sequence"],
            at=row["created_at"],
            action=row["action"],
            label=ACTION_LABELS.get(row["action"], row["action"]),
            outcome=row["outcome"],
            actor=row["actor_username"] or "system",
            session_ref=row["session_ref"],
            toolkits=row["toolkit_slugs"].split(),
            reason=row["reason"],
        )
        for row in rows[:limit]
    ]
    return Timeline(entries=entries, older_than=entries[-1].sequence if more else None)
