"""Read queries of the toolkit access report (no writes, no markup).

Every function runs a fixed number of queries whatever the data size; lists are bounded or
iterated in chunks. "Ended" of a session means `superseded_at` or, failing that, `deleted_at`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import (
    AuditEvent,
    SessionToolkit,
    Toolkit,
    ToolkitDailyRollup,
    ToolRouterSession,
)

ACTIVE = ToolRouterSession.Status.ACTIVE
CHANGE_IN_PLACE = "session.change_toolkits"


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a calendar day in UTC."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def session_ended(path: str = "") -> Coalesce:
    """When a session (at `path`, e.g. "session__") ended: `superseded_at`, else `deleted_at`."""
    return Coalesce(F(f"{path}superseded_at"), F(f"{path}deleted_at"))


def in_place_changes() -> QuerySet[AuditEvent]:
    """The successful in-place toolkit changes (same session), from the audit trail."""
    return AuditEvent.objects.filter(action=CHANGE_IN_PLACE, outcome=AuditEvent.Outcome.SUCCESS)


def toolkits_changed(details: object) -> tuple[list[str], list[str]]:
    """An in-place change event's toolkits before and after it (its `before` and `toolkits`)."""
    details = details if isinstance(details, dict) else {}
    return list(details.get("before") or []), list(details.get("toolkits") or [])


def row_urls(name: str) -> Callable[[object], str]:
    """Each row's link to the view `name` (one argument, written as is in the path), reversed
    once and completed per row, not by `{% url %}` for every row of a page."""
    placeholder = "__row__"
    before, _, after = reverse(name, args=[placeholder]).partition(placeholder)
    return lambda key: f"{before}{key}{after}"


def _batches(rows: QuerySet[Any], *, limit: int | None, offset: int, chunk: int) -> Iterator[list]:
    """`rows[offset : offset + limit]` (to the end without a limit), one query per `chunk` rows."""
    end = None if limit is None else offset + limit
    position = offset
    while end is None or position < end:
        size = chunk if end is None else min(chunk, end - position)
        batch = list(rows[position : position + size])
        if not batch:
            return
        position += len(batch)
        yield batch
        if len(batch) < size:
            return


# --- Toolkits: who can use them now ------------------------------------------------------------


@dataclass(frozen=True)
class ToolkitAccess:
    slug: str
    name: str
    is_allowed: bool
    in_catalog: bool
    users: int
    url: str = ""  # its holders' page

    @property
    def flagged(self) -> bool:
        """In active sessions although no longer allowed or no longer in Composio's catalog."""
        return self.users > 0 and not (self.is_allowed and self.in_catalog)

    @property
    def problem(self) -> str:
        reasons = []
        if not self.is_allowed:
            reasons.append("not allowed")
        if not self.in_catalog:
            reasons.append("no longer in Composio's catalog")
        return " and ".join(reasons)


def _created_between(granted_from: dt.date | None, granted_to: dt.date | None) -> Q:
    """Rollup rows of the days sessions were created in this range (UTC days, both included)."""
    days = Q()
    if granted_from is not None:
        days &= Q(day__gte=granted_from)
    if granted_to is not None:
        days &= Q(day__lte=granted_to)
    return days


def active_counts(
    granted_from: dt.date | None = None, granted_to: dt.date | None = None
) -> dict[int, int]:
    """Toolkit id -> end users whose active session includes it (with a range: a session created
    then), from the daily rollup's `active` column (`tool_router.rollups`). One query over at most
    days x toolkits rows.

    At most one session per end user is active (a database constraint), so counting links
    counts users.
    """
    return {
        toolkit: n
        for toolkit, n in ToolkitDailyRollup.objects.filter(
            _created_between(granted_from, granted_to)
        )
        .values_list("toolkit_id")
        .annotate(n=Sum("active"))
        .order_by()
        if n
    }


def active_counts_with_range(
    granted_from: dt.date | None, granted_to: dt.date | None
) -> tuple[dict[int, int], dict[int, int]]:
    """`active_counts()` and `active_counts(granted_from, granted_to)` in one query: every
    toolkit's active links, and those of sessions created in the range."""
    every: dict[int, int] = {}
    dated: dict[int, int] = {}
    for toolkit, n, n_dated in (
        ToolkitDailyRollup.objects.values_list("toolkit_id")
        .annotate(
            n=Sum("active"),
            n_dated=Sum("active", filter=_created_between(granted_from, granted_to)),
        )
        .order_by()
    ):
        if n:
            every[toolkit] = n
        if n_dated:
            dated[toolkit] = n_dated
    return every, dated


def toolkit_access(
    *,
    allowed: bool | None = None,
    not_in_catalog: bool = False,
    granted_from: dt.date | None = None,
    granted_to: dt.date | None = None,
    counts: dict[int, int] | None = None,
) -> list[ToolkitAccess]:
    """Each toolkit with the number of end users whose active session includes it.

    Lists toolkits in use, plus allowed ones nobody uses yet; most users first. `granted_*`
    count only sessions created in that range. Two queries (one if `counts` is given).
    """
    if counts is None:
        counts = active_counts(granted_from, granted_to)
    toolkits = Toolkit.objects.all()
    if granted_from is not None or granted_to is not None:
        toolkits = toolkits.filter(pk__in=list(counts))
    else:
        toolkits = toolkits.filter(Q(pk__in=list(counts)) | Q(is_allowed=True))
    if allowed is not None:
        toolkits = toolkits.filter(is_allowed=allowed)
    if not_in_catalog:
        toolkits = toolkits.filter(in_catalog=False)
    rows = _access_rows(toolkits, counts)
    rows.sort(key=lambda row: (-row.users, row.slug))
    return rows


def _access_rows(toolkits: QuerySet[Toolkit], counts: dict[int, int]) -> list[ToolkitAccess]:
    holders_url = row_urls("audit:access_toolkit")
    return [
        ToolkitAccess(
            slug=t.slug,
            name=t.name,
            is_allowed=t.is_allowed,
            in_catalog=t.in_catalog,
            users=counts.get(t.pk, 0),
            url=holders_url(t.slug),
        )
        for t in toolkits.only("slug", "name", "is_allowed", "in_catalog")
    ]


def flagged_toolkits(counts: dict[int, int] | None = None) -> list[ToolkitAccess]:
    """Toolkits in active sessions that are no longer allowed or no longer in the catalog."""
    if counts is None:
        counts = active_counts()
    suspects = Toolkit.objects.filter(pk__in=list(counts)).filter(
        Q(is_allowed=False) | Q(in_catalog=False)
    )
    rows = _access_rows(suspects, counts)
    rows.sort(key=lambda row: (-row.users, row.slug))
    return rows


# --- One toolkit: its users, since when, granted by whom ---------------------------------------


@dataclass(frozen=True)
class Holder:
    external_id: str
    session_id: str
    session_created_at: dt.datetime
    since: dt.datetime
    granted_by: str


def toolkit_holders(
    *, toolkit: Toolkit, limit: int | None = None, offset: int = 0, chunk: int = 2000
) -> Iterator[Holder]:
    """End users whose active session includes `toolkit`, by external id.

    `since` follows the chain of refreshes back (`replaces`) while each earlier session also
    included the toolkit: the grant's start, and `granted_by` is whoever created that session.
    Two queries per chunk.
    """
    links = (
        SessionToolkit.objects.filter(toolkit=toolkit, session__status=ACTIVE)
        .order_by("session__end_user__external_id")
        .values_list(
            "session_id",
            "session__session_id",
            "session__created_at",
            "session__end_user_id",
            "session__end_user__external_id",
            "session__replaces_id",
            "session__created_by__username",
        )
    )
    for batch in _batches(links, limit=limit, offset=offset, chunk=chunk):
        history = _earlier_sessions_with(toolkit, [row[3] for row in batch if row[5] is not None])
        for pk, session_id, created_at, _, external_id, replaces_id, creator in batch:
            since, granted_by = created_at, creator or ""
            seen = {pk}
            while replaces_id is not None and replaces_id in history and replaces_id not in seen:
                seen.add(replaces_id)
                since, granted_by, replaces_id = history[replaces_id]
            yield Holder(
                external_id=external_id,
                session_id=session_id,
                session_created_at=created_at,
                since=since,
                granted_by=granted_by,
            )


def _earlier_sessions_with(
    toolkit: Toolkit, end_user_ids: Sequence[int]
) -> dict[int, tuple[dt.datetime, str, int | None]]:
    if not end_user_ids:
        return {}
    rows = (
        SessionToolkit.objects.filter(toolkit=toolkit, session__end_user_id__in=end_user_ids)
        .exclude(session__status=ACTIVE)
        .values_list(
            "session_id",
            "session__created_at",
            "session__created_by__username",
            "session__replaces_id",
        )
    )
    return {pk: (created, creator or "", replaces) for pk, created, creator, replaces in rows}


def toolkit_holder_count(*, toolkit: Toolkit) -> int:
    """End users whose active session includes `toolkit`, from the daily rollup (one query)."""
    total = ToolkitDailyRollup.objects.filter(toolkit=toolkit).aggregate(n=Sum("active"))["n"]
    return total or 0


# --- End users: what they can use -------------------------------------------------------------


@dataclass(frozen=True)
class UserAccess:
    external_id: str
    session_id: str
    session_created_at: dt.datetime
    granted_by: str
    toolkits: tuple[str, ...]


def user_access(
    *, limit: int | None = None, offset: int = 0, chunk: int = 2000
) -> Iterator[UserAccess]:
    """Each end user with an active session and the toolkits it grants. Two queries per chunk."""
    sessions = (
        ToolRouterSession.objects.filter(status=ACTIVE)
        .order_by("end_user__external_id")
        .values_list(
            "pk", "session_id", "created_at", "end_user__external_id", "created_by__username"
        )
    )
    for batch in _batches(sessions, limit=limit, offset=offset, chunk=chunk):
        slugs: dict[int, list[str]] = defaultdict(list)
        for session_pk, slug in (
            SessionToolkit.objects.filter(session_id__in=[row[0] for row in batch])
            .order_by("toolkit__slug")
            .values_list("session_id", "toolkit__slug")
        ):
            slugs[session_pk].append(slug)
        for pk, session_id, created_at, external_id, creator in batch:
            yield UserAccess(
                external_id=external_id,
                session_id=session_id,
                session_created_at=created_at,
                granted_by=creator or "",
                toolkits=tuple(slugs[pk]),
            )


def active_session_count() -> int:
    return ToolRouterSession.objects.filter(status=ACTIVE).count()


# --- Grants and revocations over time ---------------------------------------------------------


@dataclass(frozen=True)
class DayCount:
    day: dt.date
    grants: int
    revocations: int


def grants_and_revocations(*, first_day: dt.date, last_day: dt.date) -> list[DayCount]:
    """Per day: (end user, toolkit) grants that began and ended, from the daily rollup
    (`tool_router.rollups`: a refresh that keeps a toolkit is neither a grant nor a revocation;
    in-place changes count on their day). One query over at most days x toolkits rows."""
    per_day = {
        day: (grants or 0, revocations or 0)
        for day, grants, revocations in ToolkitDailyRollup.objects.filter(
            day__gte=first_day, day__lte=last_day
        )
        .values_list("day")
        .annotate(Sum("grants"), Sum("revocations"))
        .order_by()
    }
    days = (last_day - first_day).days + 1
    return [
        DayCount(
            day=first_day + dt.timedelta(days=n),
            grants=per_day.get(first_day + dt.timedelta(days=n), (0, 0))[0],
            revocations=per_day.get(first_day + dt.timedelta(days=n), (0, 0))[1],
        )
        for n in range(days)
    ]


def default_chart_range(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    today = today or timezone.now().date()
    return today - dt.timedelta(days=29), today


# --- Sessions changed outside the console -----------------------------------------------------


@dataclass(frozen=True)
class OutsideChange:
    external_id: str
    session_pk: int
    session_id: str
    status: str
    checked_at: dt.datetime
    versions: tuple[dict[str, Any], ...]  # {"version", "created_at", "toolkits"} each
    url: str  # the session's admin page


def changed_outside(*, limit: int = 100) -> list[OutsideChange]:
    """Sessions whose Composio config history, when last read (`tool_router.config_history`),
    had a version no audit event explains: most recently checked first. One query; never asks
    Composio."""
    rows = (
        ToolRouterSession.objects.filter(config_checked_at__isnull=False)
        .exclude(config_unexplained=[])
        .order_by("-config_checked_at", "pk")
        .values_list(
            "pk",
            "session_id",
            "status",
            "end_user__external_id",
            "config_checked_at",
            "config_unexplained",
        )[:limit]
    )
    admin_url = row_urls("admin:sessions_app_toolroutersession_change")
    return [
        OutsideChange(
            external_id=external_id,
            session_pk=pk,
            session_id=session_id,
            status=status,
            checked_at=checked_at,
            versions=tuple(unexplained or ()),
            url=admin_url(pk),
        )
        for pk, session_id, status, external_id, checked_at, unexplained in rows
        if unexplained
    ]
