"""A request budget shared by every worker and web process: a token bucket in one database row.

Composio limits requests per minute per project (2,000/min on the plan the console is sized for),
so every worker on every machine draws from the same bucket. A caller reserves its tokens in one
short transaction under a row lock (PostgreSQL `SELECT ... FOR UPDATE`; SQLite's IMMEDIATE
transactions serialise writers) and is told how long to wait before sending: tokens may go
negative, which queues callers fairly without holding the lock while they wait. Worker processes
read the same settings (console.settings reads the environment they are started with).

Bulk runners `reserve_many` for a batch of items (waiting as long as it takes) and send each at its
turn, each runner never faster than the budget's pace (`Pacer`); services calling Composio for a
web request `draw`, which never waits long and refuses instead (`BudgetSpent`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from sessions_app.composio import seam as composio_seam
from sessions_app.models import RateBudget
from sessions_app.tool_router.errors import BudgetSpent

COMPOSIO = "composio"
# What a web request has waited for the budget so far (seconds), kept on the request.
_WAITED = "_composio_budget_waited"


def rate_per_minute() -> float:
    """Requests per minute every worker together may send to Composio (BULK_RATE_PER_MINUTE)."""
    return max(1.0, float(settings.BULK_RATE_PER_MINUTE))


def burst() -> float:
    """How many requests may go out at once after a quiet spell (BULK_RATE_BURST; 0: one
    second's worth of the rate)."""
    return max(1.0, float(settings.BULK_RATE_BURST) or rate_per_minute() / 60.0)


@dataclass(frozen=True)
class Turn:
    """What the bucket answered: whether the tokens were taken, and the seconds to wait before
    sending (taken) or until the bucket has them (not taken)."""

    taken: bool
    wait: float


def _reserve(
    cost: float,
    *,
    name: str,
    per_minute: float | None,
    capacity: float | None,
    now: Callable[[], float],
    max_wait: float | None,
) -> Turn:
    per_second = (per_minute if per_minute is not None else rate_per_minute()) / 60.0
    cap = capacity if capacity is not None else burst()
    for _ in range(3):
        try:
            with transaction.atomic():
                row = RateBudget.objects.select_for_update().filter(name=name).first()
                moment = now()
                if row is None:
                    row = RateBudget.objects.create(name=name, tokens=cap, updated_at=moment)
                elapsed = max(0.0, moment - row.updated_at)
                tokens = min(cap, row.tokens + elapsed * per_second) - cost
                wait = 0.0 if tokens >= 0 else -tokens / per_second
                if max_wait is not None and wait > max_wait:
                    return Turn(taken=False, wait=wait)
                row.tokens = tokens
                row.updated_at = max(moment, row.updated_at)
                row.save(update_fields=["tokens", "updated_at"])
        except IntegrityError:
            # Two workers created the row at once; the loser reads the winner's row.
            continue
        return Turn(taken=True, wait=wait)
    raise RuntimeError("Could not reserve from the rate budget.")


def reserve(
    cost: float = 1.0,
    *,
    name: str = COMPOSIO,
    per_minute: float | None = None,
    capacity: float | None = None,
    now: Callable[[], float] = time.time,
) -> float:
    """Take `cost` tokens from the bucket; return the seconds to wait before sending (0 = now)."""
    return _reserve(
        cost, name=name, per_minute=per_minute, capacity=capacity, now=now, max_wait=None
    ).wait


def reserve_many(count: int, cost: float = 1.0, *, name: str = COMPOSIO) -> list[float]:
    """Take the tokens of `count` calls of `cost` each in one reservation; return, for each call
    in turn, the seconds to wait before sending it (spread at the budget's pace, as `count`
    separate reservations would have been)."""
    if count <= 0:
        return []
    wait = reserve(count * cost, name=name)
    per_second = rate_per_minute() / 60.0
    # The last call is due when the bucket is back at zero; each earlier one a call's worth
    # of tokens sooner.
    return [max(0.0, wait - (count - 1 - i) * cost / per_second) for i in range(count)]


# How late a sleeping sender may wake without the pace counting it against the next call.
JITTER = 0.05


class Pacer:
    """One sender's own pace inside the shared budget, so that calls it paid for on time but
    could not send on time (its process starved of CPU, every thread busy) do not all go at once
    when it catches up. `reserve_many` spaces a batch's due times at the budget's pace; a runner
    that falls behind them would otherwise send the whole backlog in one burst, ahead of the
    bucket Composio's own limit counts against.

    The generic cell rate algorithm: a call due at `due` starts at the latest of `due`, now and
    what the pace allows, which is a burst of `capacity` tokens after a quiet spell and
    `per_minute` after that. Calls sent when they are due (spaced by the shared bucket) are not
    held back; a sleep that wakes a little late does not push later calls back (`JITTER`). Not
    thread-safe: the caller holds its own lock.

    The pace is one runner's: runners in several processes that all fall behind at once each
    catch up at the budget's rate. The shared bucket still bounds every minute they send in.
    """

    def __init__(
        self, cost: float, *, per_minute: float | None = None, capacity: float | None = None
    ) -> None:
        per_second = (per_minute if per_minute is not None else rate_per_minute()) / 60.0
        cap = capacity if capacity is not None else burst()
        self.interval = cost / per_second
        self.tolerance = max(JITTER, (cap - cost) / per_second)
        self._theoretical = -math.inf  # when the pace would next be back where it started

    def start(self, due: float, now: float) -> float:
        """When a call due at `due` (the clock of `now`) may start; counts it as started then."""
        start = max(due, now, self._theoretical - self.tolerance)
        self._theoretical = max(start, self._theoretical) + self.interval
        return start


def gated(gate: AbstractContextManager[object] | None) -> AbstractContextManager[None]:
    """Make every Composio call this thread sends enter `gate` while the block runs (a bulk
    runner's cap on calls in flight, `gate` a semaphore-like context manager; None: ungated)."""
    return composio_seam.gated(gate)


def take(
    cost: float = 1.0,
    *,
    name: str = COMPOSIO,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Reserve `cost` tokens and sleep until they are due. Returns the seconds waited."""
    wait = reserve(cost, name=name)
    if wait > 0:
        sleep(wait)
    return wait


def take_within(
    cost: float = 1.0,
    *,
    max_wait: float,
    name: str = COMPOSIO,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Reserve `cost` tokens if they are due within `max_wait` seconds and sleep until then;
    return False, taking nothing, when the budget is spent for longer (a background sweep stops
    there and leaves the rest to its next run)."""
    turn = _reserve(
        cost, name=name, per_minute=None, capacity=None, now=time.time, max_wait=max(0.0, max_wait)
    )
    if not turn.taken:
        return False
    if turn.wait > 0:
        sleep(turn.wait)
    return True


def draw(
    request: HttpRequest | None,
    cost: float = 1.0,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Pay for `cost` Composio requests a service is about to send for a web request.

    The one place web calls meet the budget: every service calls it right before the seam (session
    changes in `intents.call`, superseded deletes, connection checks, the catalog sync). It waits
    for its turn, up to COMPOSIO_WEB_MAX_WAIT_SECONDS for the whole request (an admin action
    calling Composio for 20 users does not wait 20 times that); a longer wait takes nothing and
    raises `BudgetSpent` with the seconds until the budget has room, so the caller sends nothing.

    Without a request it draws nothing: a bulk job's runner pays for each item (`take`) before it
    calls the services, which must not charge that item again; commands an operator runs are not
    rationed here.
    """
    if request is None:
        return
    waited = float(getattr(request, _WAITED, 0.0))
    bound = max(0.0, float(settings.COMPOSIO_WEB_MAX_WAIT_SECONDS) - waited)
    turn = _reserve(
        cost, name=COMPOSIO, per_minute=None, capacity=None, now=time.time, max_wait=bound
    )
    if not turn.taken:
        raise BudgetSpent(retry_after=max(1, math.ceil(turn.wait)))
    if turn.wait > 0:
        setattr(request, _WAITED, waited + turn.wait)
        sleep(turn.wait)
