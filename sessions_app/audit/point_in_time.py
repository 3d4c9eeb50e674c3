"""Point in time: who could use toolkit X on day D, read from the session history (no writes).

A session grants its toolkits from `created_at` until it ended (`superseded_at`, else
`deleted_at`); toolkits changed in place are read from the audit trail's change events.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Q

from sessions_app.audit.reports import (
    day_bounds,
    in_place_changes,
    session_ended,
    toolkits_changed,
)
from sessions_app.models import SessionToolkit, Toolkit, ToolRouterSession

# An in-place change of a session's toolkits: when, the toolkits before, the toolkits after.
Change = tuple[dt.datetime, list[str], list[str]]


@dataclass(frozen=True)
class PastAccess:
    external_id: str
    session_id: str
    from_at: dt.datetime
    until: dt.datetime | None
    granted_by: str


def access_on(*, toolkit: Toolkit, day: dt.date) -> list[PastAccess]:
    """Who could use `toolkit` at any moment of `day` (UTC), from the session history.

    A session grants its toolkits from `created_at` until it ended (superseded or deleted).
    Toolkits changed in place are read from the audit trail's successful
    `session.change_toolkits` events (their `before` and `toolkits`), so a toolkit removed in place
    is not credited for the time after its removal, nor one added for the time before.
    At most five queries.
    """
    start, end = day_bounds(day)
    changed = _sessions_changed_in_place(toolkit)
    overlapping = (
        ToolRouterSession.objects.annotate(ended=session_ended())
        .filter(created_at__lt=end)
        .filter(Q(ended__isnull=True) | Q(ended__gt=start))
    )
    # The toolkit's sessions first (from an index alone), then those by key: a join would scan
    # every session of the day's range.
    linked = SessionToolkit.objects.filter(toolkit=toolkit).values_list("session_id", flat=True)
    candidates = (
        overlapping.filter(pk__in={*linked, *changed})
        .order_by()
        .values_list(
            "pk",
            "session_id",
            "created_at",
            "ended",
            "end_user__external_id",
            "created_by__username",
        )
    )
    rows: list[PastAccess] = []
    for pk, session_id, created_at, ended, external_id, creator in candidates:
        for seg_start, seg_end, slugs in _segments(created_at, ended, changed.get(pk)):
            if toolkit.slug in slugs and seg_start < end and (seg_end is None or seg_end > start):
                rows.append(
                    PastAccess(
                        external_id=external_id,
                        session_id=session_id,
                        from_at=seg_start,
                        until=seg_end,
                        granted_by=creator or "",
                    )
                )
    rows.sort(key=lambda row: (row.external_id, row.from_at))
    return rows


def _sessions_changed_in_place(toolkit: Toolkit) -> dict[int, list[Change]]:
    """Sessions whose toolkits were changed in place at some point involving `toolkit`."""
    involved = in_place_changes().filter(
        toolkit_slugs__contains=f" {toolkit.slug} ", session_id__isnull=False
    )
    changes: dict[int, list[Change]] = defaultdict(list)
    for session_pk, at, details in (
        in_place_changes()
        .filter(session_id__in=involved.values("session_id"))
        .order_by("sequence")
        .values_list("session_id", "created_at", "details")
    ):
        changes[session_pk].append((at, *toolkits_changed(details)))
    return dict(changes)


def _segments(
    created_at: dt.datetime,
    ended: dt.datetime | None,
    changes: list[Change] | None,
) -> Iterator[tuple[dt.datetime, dt.datetime | None, set[str]]]:
    if not changes:
        # The current SessionToolkit rows (the candidate query checked the toolkit is there).
        yield created_at, ended, _ALL
        return
    seg_start = created_at
    current = set(changes[0][1])
    for at, _, after in changes:
        yield seg_start, at, current
        seg_start, current = at, set(after)
    yield seg_start, ended, current


class _Everything(frozenset):
    def __contains__(self, item: object) -> bool:
        return True


_ALL: set[str] = _Everything()  # type: ignore[assignment]
