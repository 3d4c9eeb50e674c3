"""Refusals are audited without letting anyone flood the audit trail.

`access.refuse` hands every refusal here. The refusals of one actor and one operation are
coalesced per window of REFUSAL_COALESCE_SECONDS (a minute by default):

- the first refusal of a window is written to the audit trail at once, as before, with
  `count: 1`;
- later ones in that window only add one to the window's counter (a `RefusalWindow` row, one
  atomic UPDATE, so parallel requests lose no count);
- when the window is closed, one summary `access.refused` event is appended with `count: N - 1`,
  `window` (its start), `coalesced: true` and the latest refusal's reason and details, so the
  counts of a window's events add up to its N refusals. Windows are closed by the first
  refusal of any later window (whoever's) and by `flush` (`manage.py flush_refusals`, for the
  worker's periodic housekeeping).

The audit trail itself stays append-only: no event is ever updated. Refusals with no actor to
name (anonymous) share one key per operation. REFUSAL_COALESCE_SECONDS=0 writes every refusal.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from sessions_app import trail
from sessions_app.models import AuditEvent, RefusalWindow
from sessions_app.request_context import NO_REQUEST_ID, bound_request_id

ACTION = "access.refused"
ANONYMOUS_KEY = "anonymous"
# A window that cannot be bumped or opened this many times running (each time it was closed
# under our feet) gives up coalescing: the refusal is written on its own.
_ATTEMPTS = 3


def window_of(moment: dt.datetime, seconds: int) -> dt.datetime:
    """The start of the window `moment` falls in (windows are aligned to the epoch, in UTC)."""
    epoch = int(moment.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, tz=dt.UTC)


def record(
    *,
    operation: str,
    reason: str,
    details: Mapping[str, Any],
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None = None,
    end_user: Any = None,
) -> None:
    """Count one refusal: write it now if it opens its window, else add it to the window.

    Raises if it can be neither written nor counted (callers fail closed on it, as on
    `trail.record`)."""
    seconds = settings.REFUSAL_COALESCE_SECONDS
    user = actor if actor is not None and actor.is_authenticated else None
    event = {"actor": user, "request": request, "reason": reason, "end_user": end_user}
    if seconds <= 0:
        _write(**event, details={**details, "count": 1})
        return
    start = window_of(timezone.now(), seconds)
    key = f"user:{user.pk}" if user is not None else ANONYMOUS_KEY
    window = {"actor_key": key, "operation": operation[:200], "window_start": start}
    latest = {
        "last_reason": trail.scrub(reason)[:500],
        "last_details": json.loads(json.dumps(trail.scrub(dict(details)), default=str)),
    }
    first = {**details, "count": 1}
    if _bump(window, latest):
        return
    close_windows(before=start)
    for _ in range(_ATTEMPTS):
        with transaction.atomic():
            if _open(window, latest, user):
                # In the window's transaction: a parallel refusal waits for this event and then
                # counts itself in, so the window's first event is never missing.
                _write(**event, details=first)
                return
        if _bump(window, latest):
            return
    _write(**event, details=first)


def _bump(window: Mapping[str, Any], latest: Mapping[str, Any]) -> bool:
    """Add one to an open window (one atomic UPDATE); False if there is none."""
    return bool(RefusalWindow.objects.filter(**window).update(count=F("count") + 1, **latest))


def _open(
    window: Mapping[str, Any], latest: Mapping[str, Any], user: AbstractBaseUser | None
) -> bool:
    """Open the window with a count of one; False if another refusal opened it first."""
    username = user.get_username() if user is not None else ""
    try:
        with transaction.atomic():
            RefusalWindow.objects.create(
                **window, **latest, actor=user, actor_username=username, count=1
            )
    except IntegrityError:
        return False
    return True


def close_windows(*, before: dt.datetime | None = None) -> int:
    """Close every window that started before `before` (every open window if None): append the
    summary event of each that counted more than its first refusal, and drop it. Returns how
    many summary events were written."""
    windows = RefusalWindow.objects.order_by("window_start", "pk")
    if before is not None:
        windows = windows.filter(window_start__lt=before)
    return sum(_close(pk) for pk in windows.values_list("pk", flat=True))


def flush(now: dt.datetime | None = None) -> int:
    """Close every window that has ended by `now` (default: now); the periodic housekeeping.
    Returns how many summary events were written."""
    seconds = settings.REFUSAL_COALESCE_SECONDS
    if seconds <= 0:
        return close_windows()
    return close_windows(before=window_of(now or timezone.now(), seconds))


def _close(pk: int) -> int:
    # Written outside any request's name: the summary is not about the request that closed it.
    with bound_request_id(NO_REQUEST_ID), transaction.atomic():
        # Locked, so a parallel refusal's UPDATE lands before the count is read or finds the
        # row gone (and opens the window anew); SQLite has one writer at a time anyway.
        window = RefusalWindow.objects.select_for_update().filter(pk=pk).first()
        if window is None:
            return 0  # closed meanwhile by someone else
        more = window.count - 1
        if more > 0:
            _write_summary(window, more)
        window.delete()
    return 1 if more > 0 else 0


def _write_summary(window: RefusalWindow, more: int) -> None:
    actor = None
    if window.actor_id is not None:
        # A stand-in carrying the snapshot: the user may have been deleted since.
        actor = get_user_model()(pk=window.actor_id)
        setattr(actor, get_user_model().USERNAME_FIELD, window.actor_username)
    start = window.window_start.astimezone(dt.UTC)
    seconds = settings.REFUSAL_COALESCE_SECONDS
    refusals = "refusal" if more == 1 else "refusals"
    reason = (
        f"{more} more {refusals} of {window.operation} in the {seconds} s from "
        f"{start:%Y-%m-%d %H:%M:%S} UTC (coalesced); the last: {window.last_reason}"
    )
    details = {
        **window.last_details,
        "count": more,
        "window": start.isoformat(),
        "coalesced": True,
    }
    _write(actor=actor, request=None, reason=reason, details=details)


def _write(**event: Any) -> None:
    """Append one `access.refused` event; `event` is the rest of `trail.record`'s keywords."""
    trail.record(action=ACTION, outcome=AuditEvent.Outcome.REFUSED, **event)
