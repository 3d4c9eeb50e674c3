"""The access report's daily rollup: per UTC day and toolkit, the (end user, toolkit) grants that
began and ended, and the active sessions created that day that hold the toolkit
(`ToolkitDailyRollup`), so its chart and its counts read a few rows per day and toolkit instead of
every session and toolkit link.

What counts (the same as `recomputed`, which `rebuild` writes and the tests compare against):

- a session's toolkit links on the day it was created, less those the session it replaces had
  (a refresh that keeps a toolkit grants nothing);
- a session's toolkit links on the day it ended (`superseded_at`, else `deleted_at`), less those
  the session that replaced it has;
- an audited in-place change (`session.change_toolkits`): what it added and what it removed, on
  its day;
- `active`: the links of the sessions still active, on the day each was created (a session's
  end takes its links off its creation day; an in-place change of an active one adds and takes
  off the difference there). Summed over every day it is the number of end users who hold each
  toolkit now (one active session per end user); over a range of days, those whose session was
  created then.

The services keep it current in the same transactions that write those rows (`records`): a new
session (and the one it supersedes), an in-place change, a delete. Each adds its difference with
two statements (insert the missing rows, then one UPDATE adding to every row it touches), so
concurrent writers add, never overwrite. `manage.py rebuild_rollups` recomputes the whole table
from the sessions and the audit trail (after a restore, or rows written by hand).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from sessions_app.models import (
    AuditEvent,
    SessionToolkit,
    Toolkit,
    ToolkitDailyRollup,
    ToolRouterSession,
)

CHANGE_IN_PLACE = "session.change_toolkits"

# (day, toolkit id) -> (grants, revocations, active)
Counts = dict[tuple[dt.date, int], tuple[int, int, int]]


def _day(at: dt.datetime) -> dt.date:
    return at.astimezone(dt.UTC).date()


def _links(session_pk: int | None) -> set[int]:
    if session_pk is None:
        return set()
    return set(
        SessionToolkit.objects.filter(session_id=session_pk).values_list("toolkit_id", flat=True)
    )


class _Delta:
    def __init__(self) -> None:
        self.grants: Counter[tuple[dt.date, int]] = Counter()
        self.revocations: Counter[tuple[dt.date, int]] = Counter()
        self.active: Counter[tuple[dt.date, int]] = Counter()

    def grant(self, day: dt.date, toolkits: Iterable[int], sign: int = 1) -> None:
        for toolkit in toolkits:
            self.grants[day, toolkit] += sign

    def revoke(self, day: dt.date, toolkits: Iterable[int], sign: int = 1) -> None:
        for toolkit in toolkits:
            self.revocations[day, toolkit] += sign

    def hold(self, day: dt.date, toolkits: Iterable[int], sign: int = 1) -> None:
        """An active session created on `day` holds (or, `sign` -1, no longer holds) these."""
        for toolkit in toolkits:
            self.active[day, toolkit] += sign

    def apply(self) -> None:
        """Add to the rollup rows: one statement whatever the number of rows touched (an upsert
        that adds to a row already there; PostgreSQL and SQLite both speak it)."""
        keys = sorted(
            k
            for k in set(self.grants) | set(self.revocations) | set(self.active)
            if self.grants[k] or self.revocations[k] or self.active[k]
        )
        if not keys:
            return
        quote = connection.ops.quote_name
        table = quote(ToolkitDailyRollup._meta.db_table)
        counts = ("grants", "revocations", "active")
        params: list[object] = []
        for day, toolkit in keys:
            params += [connection.ops.adapt_datefield_value(day), toolkit]
            params += [self.grants[day, toolkit], self.revocations[day, toolkit]]
            params.append(self.active[day, toolkit])
        added = ", ".join(f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in counts)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({quote('day')}, {quote('toolkit_id')}, "
                f"{', '.join(quote(c) for c in counts)}) "
                f"VALUES {', '.join(['(%s, %s, %s, %s, %s)'] * len(keys))} "
                f"ON CONFLICT ({quote('day')}, {quote('toolkit_id')}) DO UPDATE SET {added}",
                params,
            )


def session_stored(
    session: ToolRouterSession,
    *,
    links: set[int],
    superseded: ToolRouterSession | None = None,
    superseded_at: dt.datetime | None = None,
    superseded_links: frozenset[int] | set[int] = frozenset(),
) -> None:
    """A new session's links (`links`, the toolkit ids) are stored (and `superseded`, the session
    it replaces, holding `superseded_links`, ended at `superseded_at` in the same transaction):
    its grants and the old session's revocations, what the new one holds and the old one no
    longer does. One statement."""
    delta = _Delta()
    before = set(superseded_links)
    delta.grant(_day(session.created_at), links - before)
    delta.hold(_day(session.created_at), links)
    if superseded is not None and superseded_at is not None:
        delta.revoke(_day(superseded_at), before - links)
        delta.hold(_day(superseded.created_at), before, sign=-1)
    delta.apply()


def links_changed(
    session: ToolRouterSession, before: set[int], after: set[int], *, audited: bool
) -> None:
    """The links of an existing session changed in place from `before` to `after` (`audited`: by
    a `session.change_toolkits` event, which the report counts on its day)."""
    if before == after:
        return
    delta = _Delta()
    added, removed = after - before, before - after
    replaced = session.replaces_id
    previous = _links(replaced)
    created = _day(session.created_at)
    # Its creation now grants what it holds now, less what the session it replaced had...
    delta.grant(created, added - previous)
    delta.grant(created, removed - previous, sign=-1)
    if session.status == ToolRouterSession.Status.ACTIVE:
        delta.hold(created, added)
        delta.hold(created, removed, sign=-1)
    # ...and that session's end revoked what this one does not hold.
    if replaced is not None:
        ended = (
            ToolRouterSession.objects.filter(pk=replaced)
            .annotate(ended=Coalesce("superseded_at", "deleted_at"))
            .values_list("ended", flat=True)
            .first()
        )
        if ended is not None:
            delta.revoke(_day(ended), added & previous, sign=-1)
            delta.revoke(_day(ended), removed & previous)
    if audited:
        today = _day(timezone.now())
        delta.grant(today, added)
        delta.revoke(today, removed)
    delta.apply()


def session_ended(session: ToolRouterSession, *, at: dt.datetime) -> None:
    """An active session was deleted at `at`: it revokes and no longer holds what it held."""
    delta = _Delta()
    links = _links(session.pk)
    delta.revoke(_day(at), links)
    delta.hold(_day(session.created_at), links, sign=-1)
    delta.apply()


# --- Recomputation -----------------------------------------------------------------------------

_SUCCESS = "success"  # AuditEvent.Outcome.SUCCESS, spelled out for a migration's models
_ACTIVE = "active"  # ToolRouterSession.Status.ACTIVE, likewise


def _models(apps: Any) -> tuple[Any, Any, Any, Any]:
    if apps is None:
        return SessionToolkit, AuditEvent, Toolkit, ToolkitDailyRollup
    return tuple(  # type: ignore[return-value]
        apps.get_model("sessions_app", name)
        for name in ("SessionToolkit", "AuditEvent", "Toolkit", "ToolkitDailyRollup")
    )


def _bounds(first_day: dt.date | None, last_day: dt.date | None) -> tuple[Q, Q, Q]:
    created, superseded, deleted = Q(), Q(), Q()
    if first_day is not None:
        start = dt.datetime.combine(first_day, dt.time.min, tzinfo=dt.UTC)
        created &= Q(session__created_at__gte=start)
        superseded &= Q(session__superseded_at__gte=start)
        deleted &= Q(session__deleted_at__gte=start)
    if last_day is not None:
        end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
        created &= Q(session__created_at__lt=end)
        superseded &= Q(session__superseded_at__lt=end)
        deleted &= Q(session__deleted_at__lt=end)
    return created, superseded, deleted


def recomputed(
    first_day: dt.date | None = None, last_day: dt.date | None = None, *, apps: Any = None
) -> Counts:
    """The rollup's rows between these days (all without them), from the sessions, their links
    and the audit trail's in-place changes. Four queries. `apps`: a migration's models."""
    SessionToolkit, AuditEvent, Toolkit, _ = _models(apps)  # noqa: N806
    created, superseded, deleted = _bounds(first_day, last_day)
    grants: Counter[tuple[dt.date, int]] = Counter()
    revocations: Counter[tuple[dt.date, int]] = Counter()
    active: Counter[tuple[dt.date, int]] = Counter()
    carried_from_previous = SessionToolkit.objects.filter(
        session_id=OuterRef("session__replaces_id"), toolkit_id=OuterRef("toolkit_id")
    )
    for day, toolkit, n in (
        SessionToolkit.objects.filter(created)
        .exclude(Exists(carried_from_previous))
        .annotate(day=TruncDate("session__created_at", tzinfo=dt.UTC))
        .values_list("day", "toolkit_id")
        .annotate(n=Count("id"))
        .order_by()
    ):
        grants[day, toolkit] += n
    carried_to_next = SessionToolkit.objects.filter(
        session__replaces_id=OuterRef("session_id"), toolkit_id=OuterRef("toolkit_id")
    )
    for day, toolkit, n in (
        SessionToolkit.objects.filter(
            (Q(session__superseded_at__isnull=False) & superseded)
            | (Q(session__superseded_at__isnull=True, session__deleted_at__isnull=False) & deleted)
        )
        .exclude(Exists(carried_to_next))
        .annotate(
            day=TruncDate(
                Coalesce(F("session__superseded_at"), F("session__deleted_at")), tzinfo=dt.UTC
            )
        )
        .values_list("day", "toolkit_id")
        .annotate(n=Count("id"))
        .order_by()
    ):
        revocations[day, toolkit] += n
    for day, toolkit, n in (
        SessionToolkit.objects.filter(created, session__status=_ACTIVE)
        .annotate(day=TruncDate("session__created_at", tzinfo=dt.UTC))
        .values_list("day", "toolkit_id")
        .annotate(n=Count("id"))
        .order_by()
    ):
        active[day, toolkit] += n
    events = AuditEvent.objects.filter(action=CHANGE_IN_PLACE, outcome=_SUCCESS)
    if first_day is not None:
        events = events.filter(created_at__gte=dt.datetime.combine(first_day, dt.time.min, dt.UTC))
    if last_day is not None:
        events = events.filter(
            created_at__lt=dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time.min, dt.UTC)
        )
    changes = list(events.values_list("created_at", "details"))
    if changes:
        ids = dict(Toolkit.objects.values_list("slug", "pk"))
        for at, details in changes:
            details = details if isinstance(details, dict) else {}
            before = {ids[s] for s in details.get("before") or [] if s in ids}
            after = {ids[s] for s in details.get("toolkits") or [] if s in ids}
            for toolkit in after - before:
                grants[_day(at), toolkit] += 1
            for toolkit in before - after:
                revocations[_day(at), toolkit] += 1
    return {
        key: (grants[key], revocations[key], active[key])
        for key in set(grants) | set(revocations) | set(active)
        if grants[key] or revocations[key] or active[key]
    }


def stored(first_day: dt.date | None = None, last_day: dt.date | None = None) -> Counts:
    """The rollup's non-zero rows between these days (for tests and `rebuild_rollups --check`)."""
    rows = ToolkitDailyRollup.objects.exclude(grants=0, revocations=0, active=0)
    if first_day is not None:
        rows = rows.filter(day__gte=first_day)
    if last_day is not None:
        rows = rows.filter(day__lte=last_day)
    return {
        (day, toolkit): (g, r, a)
        for day, toolkit, g, r, a in rows.values_list(
            "day", "toolkit_id", "grants", "revocations", "active"
        )
    }


def rebuild(*, apps: Any = None) -> int:
    """Replace the whole rollup with its recomputation (one transaction); the rows written.
    `apps`: a migration's models (the migration that adds the table fills it)."""
    rollup = _models(apps)[3]
    with transaction.atomic():
        counts = recomputed(apps=apps)
        rollup.objects.all().delete()
        rollup.objects.bulk_create(
            [
                rollup(day=day, toolkit_id=toolkit, grants=g, revocations=r, active=a)
                for (day, toolkit), (g, r, a) in sorted(counts.items())
            ],
            batch_size=2000,
        )
    return len(counts)


def differences() -> int:
    """How many (day, toolkit) rows the rollup and its recomputation disagree on."""
    ours, theirs = stored(), recomputed()
    return sum(1 for key in set(ours) | set(theirs) if ours.get(key) != theirs.get(key))
