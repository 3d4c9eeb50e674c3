"""A session's connection state per toolkit, read from Composio and shared by every web process.

Each look at a session's connections used to ask Composio (two requests), so a polling tab could
spend the plan's budget on its own. Now:

- A check is kept in the shared cache (console/settings.py CACHES, a database table every web
  process and machine reads) for CONNECTION_STATUS_CACHE_SECONDS; views within that time answer
  from it, with its age ("checked N s ago"). Composio's failures are kept too, so a session
  Composio cannot answer for is not asked again by every view.
- On a miss one request fills it: the others wait for its answer (up to
  COMPOSIO_WEB_MAX_WAIT_SECONDS), then say to try again, never calling Composio themselves.
- "Check now" skips the cache, at most once per CONNECTION_CHECK_NOW_SECONDS per staff user and
  session; past that it answers with the cached state and when to try again, and sends nothing.
- Every request sent pays from the shared Composio budget (`rate_limit.draw`); when it is spent,
  nothing is sent and the answer says when to try again.

A check changes nothing at Composio. The one row it writes: a session Composio answers not found
for is marked stale (`drift.mark_stale`, audited), and a stale one it answers for is un-marked.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import astuple, dataclass, replace

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.http import HttpRequest

from sessions_app.composio import seam as composio_seam
from sessions_app.models import ToolRouterSession
from sessions_app.tool_router import drift, rate_limit
from sessions_app.tool_router.errors import BudgetSpent

logger = logging.getLogger(__name__)

Actor = AbstractBaseUser | AnonymousUser | None

# A check sends two requests: the session, then its toolkits (one page: at most
# TOOL_ROUTER_MAX_TOOLKITS, fewer than the seam's page of 50).
REQUESTS_PER_CHECK = 2
_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class ConnectionCheck:
    """What the card shows: the toolkits' states, or why there are none, and how old they are.

    `checked_at` is when Composio answered (epoch seconds; None when nothing was checked) and
    `age` its age in whole seconds when served. `retry_after` is set when this request could not
    ask Composio (the budget is spent, another request is asking, or "check now" was used a
    moment ago), with `notice` saying so when a cached state is shown anyway.
    """

    connections: list[composio_seam.ToolkitConnection]
    error: str = ""
    checked_at: float | None = None
    age: int = 0
    retry_after: int | None = None
    notice: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def _clock() -> float:
    return time.time()


def _status_key(session: ToolRouterSession) -> str:
    return f"connections:{session.public_id}"


def _filling_key(session: ToolRouterSession) -> str:
    return f"connections:{session.public_id}:filling"


def _check_now_key(session: ToolRouterSession, actor: Actor) -> str:
    return f"connections:{session.public_id}:now:{getattr(actor, 'pk', None)}"


def tool_router_session_connections(
    *,
    session: ToolRouterSession,
    actor: Actor,
    request: HttpRequest | None = None,
) -> ConnectionCheck:
    """Each toolkit's connection state: from the shared cache when a check of this session is
    younger than CONNECTION_STATUS_CACHE_SECONDS, else asked of Composio by one request at a
    time. Never raises for Composio's failures: the error is a sentence to show where the badges
    would be. Changes nothing anywhere but the cache and the budget."""
    cached = _cached(session)
    if cached is not None:
        return cached
    if not cache.add(_filling_key(session), _clock(), timeout=_filling_seconds()):
        return _wait_for_filler(session)
    try:
        # The filler before us may have stored its answer and left between our two reads.
        return _cached(session) or _ask(session, actor=actor, request=request)
    finally:
        cache.delete(_filling_key(session))


def tool_router_session_connections_check_now(
    *,
    session: ToolRouterSession,
    actor: Actor,
    request: HttpRequest | None = None,
) -> ConnectionCheck:
    """Ask Composio now, past the cache, and keep the answer for every view. At most once per
    CONNECTION_CHECK_NOW_SECONDS per staff user and session: sooner, the cached state (if any)
    comes back with `retry_after` and a notice, and nothing is sent."""
    key = _check_now_key(session, actor)
    now = _clock()
    limit = max(1, int(settings.CONNECTION_CHECK_NOW_SECONDS))
    if not cache.add(key, now, timeout=limit):
        last = cache.get(key)
        wait = max(1, math.ceil(limit - (now - float(last)))) if last is not None else 1
        return replace(
            _cached(session) or ConnectionCheck(connections=[]),
            retry_after=wait,
            notice=f"You checked this session's connections a moment ago; you may check "
            f"again in {wait} s.",
        )
    check = _ask(session, actor=actor, request=request)
    if check.retry_after is not None:
        # Nothing was sent (the budget is spent): the staff user's turn is not used up.
        cache.delete(key)
        cached = _cached(session)
        if cached is not None:
            return replace(cached, retry_after=check.retry_after, notice=check.error)
    return check


def tool_router_session_connections_forget(*, session: ToolRouterSession) -> None:
    """Drop the session's cached state (its toolkits changed): the next view asks again."""
    cache.delete(_status_key(session))


# --- Asking Composio -----------------------------------------------------------------------------


def _ask(
    session: ToolRouterSession, *, actor: Actor, request: HttpRequest | None
) -> ConnectionCheck:
    """Pay for the requests, ask Composio, keep what it answered (its failures too) for every
    view. A spent budget is not kept: nothing was asked."""
    try:
        rate_limit.draw(request, REQUESTS_PER_CHECK)
    except BudgetSpent as spent:
        return ConnectionCheck(connections=[], error=spent.message, retry_after=spent.retry_after)
    try:
        connections = composio_seam.session_connections(session.session_id)
    except composio_seam.ComposioNotFound:
        drift.mark_stale(session, via="connections check", actor=actor, request=request)
        return _store(session, [], drift.NOT_KNOWN)
    except composio_seam.ComposioError as exc:
        return _store(session, [], _failed(session, actor, exc))
    if session.stale_since is not None:
        drift.mark_known(session, via="connections check", actor=actor, request=request)
    return _store(session, list(connections), "")


def _failed(session: ToolRouterSession, actor: Actor, exc: composio_seam.ComposioError) -> str:
    logger.info(
        "connection check failed for session %s by %s: %s",
        session.session_id,
        getattr(actor, "pk", None),
        exc.message,
    )
    return exc.message


def _store(
    session: ToolRouterSession, connections: list[composio_seam.ToolkitConnection], error: str
) -> ConnectionCheck:
    at = _clock()
    payload = {"at": at, "connections": [astuple(c) for c in connections], "error": error}
    cache.set(_status_key(session), payload, timeout=_status_seconds())
    return _check(session, payload, at)


# --- Reading the cache ---------------------------------------------------------------------------


def _cached(session: ToolRouterSession) -> ConnectionCheck | None:
    payload = cache.get(_status_key(session))
    if not isinstance(payload, dict):
        return None
    try:
        return _check(session, payload, _clock())
    except (KeyError, TypeError, ValueError):
        # Written by another version of this module: ask again.
        return None


def _check(session: ToolRouterSession, payload: dict, now: float) -> ConnectionCheck:
    at = float(payload["at"])
    connections = [composio_seam.ToolkitConnection(*row) for row in payload["connections"]]
    return ConnectionCheck(
        connections=_ordered(connections, session.toolkits),
        error=str(payload["error"]),
        checked_at=at,
        age=max(0, int(now - at)),
    )


def _wait_for_filler(session: ToolRouterSession) -> ConnectionCheck:
    """Another request is asking Composio about this session: wait for its answer a little."""
    deadline = time.monotonic() + max(0.0, float(settings.COMPOSIO_WEB_MAX_WAIT_SECONDS))
    while time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        cached = _cached(session)
        if cached is not None:
            return cached
    return ConnectionCheck(
        connections=[],
        error="Another request is asking Composio about this session right now; "
        "try again in a moment.",
        retry_after=1,
    )


def _status_seconds() -> int:
    return max(1, int(settings.CONNECTION_STATUS_CACHE_SECONDS))


def _filling_seconds() -> int:
    # Long enough for a check's two requests to time out; the filler removes it when done.
    per_request = float(settings.COMPOSIO_CONNECT_TIMEOUT) + float(settings.COMPOSIO_READ_TIMEOUT)
    return max(1, math.ceil(REQUESTS_PER_CHECK * per_request) + 1)


def _ordered(
    connections: Iterable[composio_seam.ToolkitConnection], toolkits: list[str]
) -> list[composio_seam.ToolkitConnection]:
    rank = {slug: i for i, slug in enumerate(toolkits)}
    return sorted(connections, key=lambda c: (rank.get(c.slug, len(rank)), c.slug))
