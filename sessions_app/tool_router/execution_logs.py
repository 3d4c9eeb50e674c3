"""Recent tool executions of an end user, from Composio's execution log, for the support card.

Support sees what the user's agent ran (the last 50, for the active session or all of the user's
sessions, filtered by status and toolkit, paged with Composio's cursor), a chart of executions per
hour over the last 24 hours, and one execution in full, its secrets redacted
(`tool_router.redaction`) before anything renders it. Every request to Composio pays from the
shared budget first (`rate_limit.draw`). Opening an execution in full is audited
(`tool_execution.view`, naming the log entry, tool and toolkit, never its content): the entry
holds what the user's agent sent and got back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.http import HttpRequest

from sessions_app import trail
from sessions_app.composio import seam as composio_seam
from sessions_app.models import AuditEvent, EndUser, Toolkit, ToolRouterSession
from sessions_app.tool_router import rate_limit
from sessions_app.tool_router.redaction import redact, redact_text

logger = logging.getLogger(__name__)

Actor = AbstractBaseUser | AnonymousUser | None

PAGE_SIZE = 50
SCOPE_SESSION, SCOPE_ALL = "session", "all"
STATUSES = ("success", "failed")
CHART_HOURS = 24
CHART_PAGE_SIZE = 100
# The chart reads at most this many pages (CHART_PAGE_SIZE each) of the last 24 hours; past
# that it says it counted only the latest ones.
CHART_MAX_PAGES = 5
VIEW_ACTION = "tool_execution.view"
META_TOOLKIT = "composio"
_LOG_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


# --- What the panel shows -------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionFilters:
    """The panel's question: whose executions (`scope`), which status and toolkit, which page."""

    scope: str = SCOPE_SESSION
    status: str = ""
    toolkit: str = ""
    cursor: str = ""


@dataclass(frozen=True)
class ExecutionRow:
    log_id: str
    at: dt.datetime
    tool: str
    toolkit: str
    status: str
    duration_ms: float | None
    error: str
    parent_tool: str

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass(frozen=True)
class ChartBar:
    """One hour of the chart, its geometry in the SVG's user units."""

    start: dt.datetime
    succeeded: int
    failed: int
    x: float
    width: float
    ok_y: float
    ok_height: float
    failed_y: float
    failed_height: float

    @property
    def label(self) -> str:
        end = self.start + dt.timedelta(hours=1)
        return (
            f"{self.start:%H:%M}–{end:%H:%M} UTC: {self.succeeded} succeeded, {self.failed} failed"
        )


@dataclass(frozen=True)
class ExecutionChart:
    bars: list[ChartBar]
    peak: int
    total: int
    failed: int
    truncated: bool
    width: int = 480
    height: int = 96
    plot_height: int = 80
    ticks: list[tuple[float, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ExecutionList:
    filters: ExecutionFilters
    rows: list[ExecutionRow] = field(default_factory=list)
    next_cursor: str | None = None
    chart: ExecutionChart | None = None
    chart_error: str = ""
    error: str = ""
    retry_after: int | None = None
    session_id: str = ""
    toolkits: list[str] = field(default_factory=list)
    # When Composio answered (epoch seconds) and, when served, how old that answer is.
    read_at: float = 0.0
    age: int = 0

    @property
    def ok(self) -> bool:
        return not self.error


# --- Listing ----------------------------------------------------------------------------------


def _active_session(end_user: EndUser) -> ToolRouterSession | None:
    return ToolRouterSession.objects.filter(
        end_user=end_user, status=ToolRouterSession.Status.ACTIVE
    ).first()


def _scope_filters(
    end_user: EndUser, session: ToolRouterSession | None, scope: str
) -> list[tuple[str, str]]:
    if scope == SCOPE_SESSION and session is not None:
        return [("session_id", session.session_id)]
    return [("user_id", end_user.external_id)]


def _failure(exc: composio_seam.ComposioError) -> tuple[str, int | None]:
    retry_after = getattr(exc, "retry_after", None)
    return redact_text(exc.message), retry_after


def recent_executions(
    *, end_user: EndUser, filters: ExecutionFilters, request: HttpRequest | None = None
) -> ExecutionList:
    """The latest PAGE_SIZE executions matching `filters` (newest first) and, on the first
    page, the chart of the last 24 hours. Never raises for Composio's failures or a spent
    budget: `error` says what happened (and `retry_after` when to try again); nothing was
    shown that Composio did not answer."""
    session = _active_session(end_user)
    scope = filters.scope if session is not None else SCOPE_ALL
    filters = ExecutionFilters(
        scope=scope, status=filters.status, toolkit=filters.toolkit, cursor=filters.cursor
    )
    base = _scope_filters(end_user, session, scope)
    wanted = list(base)
    if filters.status:
        wanted.append(("status", filters.status))
    if filters.toolkit:
        wanted.append(("toolkit_slug", filters.toolkit))
    common = {
        "filters": filters,
        "session_id": session.session_id if session is not None else "",
        "toolkits": list(session.toolkits) if session is not None else [],
    }
    key = _cache_key(end_user, common["session_id"], filters)
    cached = cache.get(key)
    if isinstance(cached, ExecutionList):
        return dataclasses.replace(cached, age=max(0, int(_now() - cached.read_at)))
    try:
        rate_limit.draw(request)
        page = composio_seam.search_execution_logs(
            filters=wanted, limit=PAGE_SIZE, cursor=filters.cursor or None
        )
    except composio_seam.ComposioError as exc:  # BudgetSpent included
        message, retry_after = _failure(exc)
        logger.info("execution log of %s not read: %s", end_user.external_id, message)
        return ExecutionList(error=message, retry_after=retry_after, **common)
    rows = _rows(page.entries, known_toolkit=filters.toolkit)
    chart, chart_error = (None, "")
    if not filters.cursor:
        chart_filters = base + ([("toolkit_slug", filters.toolkit)] if filters.toolkit else [])
        chart, chart_error = _chart(chart_filters, request)
    answer = ExecutionList(
        rows=rows,
        next_cursor=page.next_cursor,
        chart=chart,
        chart_error=chart_error,
        read_at=_now(),
        **common,
    )
    cache.set(key, answer, timeout=max(1, int(settings.SUPPORT_EXECUTIONS_CACHE_SECONDS)))
    return answer


def _cache_key(end_user: EndUser, session_id: str, filters: ExecutionFilters) -> str:
    """One page of one question: every web process shares it for SUPPORT_EXECUTIONS_CACHE_SECONDS
    (Composio's failures are not kept: the next view asks again)."""
    question = "\x1f".join(
        (session_id, filters.scope, filters.status, filters.toolkit, filters.cursor)
    )
    digest = hashlib.sha256(question.encode()).hexdigest()[:32]
    return f"executions:{end_user.public_id}:{digest}"


def _rows(
    entries: tuple[composio_seam.ExecutionLogEntry, ...], *, known_toolkit: str = ""
) -> list[ExecutionRow]:
    toolkits = _toolkits_of(e.tool_slug for e in entries) if not known_toolkit else {}
    rows = []
    for entry in entries:
        error = ""
        if entry.status == "failed":
            prefix = f"{entry.tool_slug} failed: " if entry.tool_slug else ""
            error = entry.message.removeprefix(prefix) if prefix else entry.message
        rows.append(
            ExecutionRow(
                log_id=entry.log_id,
                at=_at(entry.at_ms),
                tool=redact_text(entry.tool_slug),
                toolkit=known_toolkit or toolkits.get(entry.tool_slug, ""),
                status=entry.status,
                duration_ms=entry.duration_ms,
                error=redact_text(error)[:500],
                parent_tool=redact_text(entry.parent_tool_slug),
            )
        )
    return rows


def _toolkits_of(tool_slugs: Any) -> dict[str, str]:
    """Each tool slug's toolkit, by the longest catalog toolkit slug it starts with (Composio's
    log search names the tool, in its message, but not the toolkit). One query."""
    slugs = {s for s in tool_slugs if s}
    prefixes: set[str] = set()
    for slug in slugs:
        parts = slug.lower().split("_")
        prefixes.update("_".join(parts[:n]) for n in range(1, len(parts)))
    known = set(Toolkit.objects.filter(slug__in=prefixes).values_list("slug", flat=True))
    out = {}
    for slug in slugs:
        if slug.startswith("COMPOSIO_"):
            out[slug] = META_TOOLKIT
            continue
        parts = slug.lower().split("_")
        for n in range(len(parts) - 1, 0, -1):
            candidate = "_".join(parts[:n])
            if candidate in known:
                out[slug] = candidate
                break
    return out


def _at(at_ms: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC)


def _now() -> float:
    return time.time()


def _chart(
    filters: list[tuple[str, str]], request: HttpRequest | None
) -> tuple[ExecutionChart | None, str]:
    """Executions per hour over the last CHART_HOURS hours (at most CHART_MAX_PAGES pages read),
    or why there is no chart."""
    now = _now()
    first_hour = (int(now // 3600) - CHART_HOURS + 1) * 3600
    counts = [[0, 0] for _ in range(CHART_HOURS)]
    cursor: str | None = None
    truncated = False
    try:
        for index in range(CHART_MAX_PAGES):
            rate_limit.draw(request)
            page = composio_seam.search_execution_logs(
                filters=filters,
                limit=CHART_PAGE_SIZE,
                cursor=cursor,
                since_ms=first_hour * 1000,
                until_ms=now * 1000,
            )
            for entry in page.entries:
                slot = int((entry.at_ms / 1000 - first_hour) // 3600)
                if 0 <= slot < CHART_HOURS:
                    counts[slot][entry.status == "failed"] += 1
            cursor = page.next_cursor
            if not cursor:
                break
            truncated = index == CHART_MAX_PAGES - 1
    except composio_seam.ComposioError as exc:
        return None, _failure(exc)[0]
    return _geometry(counts, first_hour, truncated), ""


def _geometry(counts: list[list[int]], first_hour: int, truncated: bool) -> ExecutionChart:
    width, plot = 480, 80
    slot = width / CHART_HOURS
    peak = max((ok + bad for ok, bad in counts), default=0)
    scale = plot / peak if peak else 0.0
    bars = []
    for index, (ok, bad) in enumerate(counts):
        ok_h, bad_h = ok * scale, bad * scale
        bars.append(
            ChartBar(
                start=dt.datetime.fromtimestamp(first_hour + index * 3600, dt.UTC),
                succeeded=ok,
                failed=bad,
                x=round(index * slot + 1, 1),
                width=round(slot - 2, 1),
                ok_y=round(plot - ok_h, 1),
                ok_height=round(ok_h, 1),
                failed_y=round(plot - ok_h - bad_h, 1),
                failed_height=round(bad_h, 1),
            )
        )
    ticks = [(round(b.x, 1), f"{b.start:%H}h") for i, b in enumerate(bars) if i % 6 == 0]
    return ExecutionChart(
        bars=bars,
        peak=peak,
        total=sum(ok + bad for ok, bad in counts),
        failed=sum(bad for _, bad in counts),
        truncated=truncated,
        width=width,
        plot_height=plot,
        ticks=ticks,
    )


# --- One execution ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionDetail:
    """One execution, redacted. `error` set (and the rest empty) when it could not be shown;
    `not_found` when Composio does not know it or it is not this user's."""

    row: ExecutionRow | None = None
    session_id: str = ""
    account_id: str = ""
    auth_config_id: str = ""
    arguments: str = ""
    response: str = ""
    metadata: str = ""
    error: str = ""
    not_found: bool = False
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.row is not None


def _pretty(value: Any) -> str:
    return json.dumps(redact(value), indent=2, sort_keys=True, default=str, ensure_ascii=False)


def execution_detail(
    *,
    end_user: EndUser,
    log_id: str,
    actor: Actor,
    request: HttpRequest | None = None,
) -> ExecutionDetail:
    """One of the user's executions in full, secrets redacted, after the viewing is in the audit
    trail (`tool_execution.view`; if that cannot be written, nothing is shown). An entry of
    another user is "not found": the card shows only its own user's executions."""
    not_found = ExecutionDetail(
        error="Composio has no such execution of this user.", not_found=True
    )
    if not _LOG_ID.match(log_id or ""):
        return not_found
    try:
        rate_limit.draw(request)
        detail = composio_seam.get_execution_log(log_id)
    except composio_seam.ComposioNotFound:
        return not_found
    except composio_seam.ComposioError as exc:  # BudgetSpent included
        message, retry_after = _failure(exc)
        return ExecutionDetail(error=message, retry_after=retry_after)
    if detail.user_id != end_user.external_id:
        return not_found
    toolkit = detail.toolkit_slug or _toolkits_of([detail.entry.tool_slug]).get(
        detail.entry.tool_slug, ""
    )
    row = _rows((detail.entry,), known_toolkit=toolkit)[0]
    session = ToolRouterSession.objects.filter(session_id=detail.session_id).first()
    trail.record(
        action=VIEW_ACTION,
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        request=request,
        end_user=end_user,
        session=session if session is not None and session.end_user_id == end_user.pk else None,
        reason=f"Viewed execution {log_id} ({row.tool or 'unknown tool'}).",
        details={"log_id": log_id, "tool": row.tool, "toolkit": row.toolkit},
    )
    data = detail.data
    data_error = data.get("error")
    return ExecutionDetail(
        row=row
        if not data_error
        else ExecutionRow(**{**row.__dict__, "error": redact_text(str(data_error))[:2000]}),
        session_id=detail.session_id,
        account_id=redact_text(str(data.get("connected_account_id") or "")),
        auth_config_id=redact_text(str(data.get("auth_config_id") or "")),
        arguments=_pretty(data.get("arguments") or {}),
        response=_pretty(data.get("response") or {}),
        metadata=_pretty(detail.metadata or {}),
    )
