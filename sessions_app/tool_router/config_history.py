"""Config history: Composio's own record of a session's configuration beside the audit trail.

Composio keeps every configuration a session has had (`config_history`: version 1 at create, one
more per PATCH). The console explains each version from its audit trail:

- version 1 by the successful `session.create` or `session.refresh` that stored the session;
- a later version by the `session.change_toolkits` event that recorded that `config_version`, or
  failing that (an outcome the console could not know, no version recorded) one such event of
  the session with the same toolkits, each event explaining one version at most.

A version nothing explains was made outside the console (Composio's dashboard, another client
of the API key). A reading (the session's admin page) whose unexplained versions differ from the
stored ones stores them on the session (`config_unexplained`, and `config_checked_at`: when that
reading was); a reading that finds what is stored writes nothing. The access report lists the
sessions that have any, so the report itself never calls Composio.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils import timezone

from sessions_app.composio import seam as composio_seam
from sessions_app.composio.records import ConfigVersion
from sessions_app.models import AuditEvent, ToolRouterSession
from sessions_app.tool_router import mcp_url, rate_limit

CREATING_ACTIONS = ("session.create", "session.refresh")
CHANGE_ACTION = "session.change_toolkits"
# The session's audit events shown beside the history (newest first).
EVENTS_SHOWN = 50


@dataclass(frozen=True)
class HistoryRow:
    version: ConfigVersion
    event: AuditEvent | None  # the audit event that explains it, None when nothing does

    @property
    def explained(self) -> bool:
        return self.event is not None


@dataclass
class ConfigHistory:
    rows: list[HistoryRow] = field(default_factory=list)
    events: list[AuditEvent] = field(default_factory=list)
    error: str = ""  # why Composio's record could not be read ("" when it was)
    retry_after: int | None = None

    @property
    def unexplained(self) -> list[HistoryRow]:
        return [row for row in self.rows if not row.explained]


def _explaining_events(session: ToolRouterSession) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            session=session, action__in=(*CREATING_ACTIONS, CHANGE_ACTION)
        ).order_by("sequence")
    )


def match(versions: list[ConfigVersion], events: list[AuditEvent]) -> list[HistoryRow]:
    """Each version with the audit event that explains it (see the module docstring)."""
    success = AuditEvent.Outcome.SUCCESS
    creates = [e for e in events if e.action in CREATING_ACTIONS and e.outcome == success]
    changes = [e for e in events if e.action == CHANGE_ACTION and e.outcome != "failure"]
    by_version = {
        (e.details or {}).get("config_version"): e
        for e in changes
        if e.outcome == success and isinstance(e.details, dict)
    }
    used: set[int] = set()
    explained: dict[int, AuditEvent] = {}
    for version in sorted(versions, key=lambda v: v.version):
        event: AuditEvent | None = None
        if version.version == 1:
            event = creates[0] if creates else None
        elif by_version.get(version.version) is not None:
            event = by_version[version.version]
        else:
            wanted = sorted(version.toolkits)
            event = next(
                (
                    e
                    for e in changes
                    if e.pk not in used
                    and (e.details or {}).get("config_version") in (None, "")
                    and sorted((e.details or {}).get("toolkits") or []) == wanted
                ),
                None,
            )
        if event is not None and event.pk not in used:
            used.add(event.pk)
            explained[version.version] = event
    return [HistoryRow(version=v, event=explained.get(v.version)) for v in versions]


def _store(session: ToolRouterSession, rows: list[HistoryRow]) -> None:
    unexplained = [
        {
            "version": row.version.version,
            "created_at": row.version.created_at,
            "toolkits": list(row.version.toolkits),
        }
        for row in rows
        if not row.explained
    ]
    if unexplained == (session.config_unexplained or []):
        return  # the stored finding stands: looking at a page writes nothing
    session.config_checked_at = timezone.now()
    session.config_unexplained = unexplained
    ToolRouterSession.objects.filter(pk=session.pk).update(
        config_checked_at=session.config_checked_at, config_unexplained=unexplained
    )


def session_config_history(
    session: ToolRouterSession, *, request: HttpRequest | None
) -> ConfigHistory:
    """Composio's config history of the session matched to its audit events (one read, paid
    from the web budget, then shared for CONFIG_HISTORY_CACHE_SECONDS), and the unexplained
    versions stored on the session when they changed. A session no longer at Composio
    (deleted, superseded) or a failed read shows the audit events only, with why."""
    history = ConfigHistory(
        events=list(AuditEvent.objects.filter(session=session).order_by("-sequence")[:EVENTS_SHOWN])
    )
    if session.status != ToolRouterSession.Status.ACTIVE:
        history.error = "The session is no longer active; Composio keeps no history of it."
        return history
    key = f"config_history:{session.pk}:{session.session_id}"
    try:
        cached = cache.get(key)
        versions = [ConfigVersion(*row) for row in cached] if cached is not None else None
    except (TypeError, ValueError):
        versions = None
    try:
        if versions is None:
            rate_limit.draw(request, 1)
            versions = composio_seam.session_config_history(session.session_id)
            cache.set(
                key,
                [astuple(v) for v in versions],
                timeout=max(1, int(settings.CONFIG_HISTORY_CACHE_SECONDS)),
            )
    except composio_seam.ComposioRateLimited as exc:
        history.error = mcp_url.mask_ids_in(exc.message, [session.session_id])
        history.retry_after = exc.retry_after
        return history
    except composio_seam.ComposioError as exc:
        history.error = mcp_url.mask_ids_in(exc.message, [session.session_id])
        return history
    history.rows = match(versions, _explaining_events(session))
    _store(session, history.rows)
    return history
