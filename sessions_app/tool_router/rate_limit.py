"""A request budget shared by every worker process: a token bucket in one database row.

Composio limits requests per minute per project (2,000/min on the plan the console is sized for),
so every worker on every machine draws from the same bucket. A caller reserves its tokens in one
short transaction under a row lock (PostgreSQL `SELECT ... FOR UPDATE`; SQLite's IMMEDIATE
transactions serialise writers) and is told how long to wait before sending: tokens may go
negative, which queues callers fairly without holding the lock while they wait. Worker processes
read the same settings (console.settings reads the environment they are started with).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, transaction

from sessions_app.models import RateBudget

COMPOSIO = "composio"


def rate_per_minute() -> float:
    """Requests per minute every worker together may send to Composio (BULK_RATE_PER_MINUTE)."""
    return max(1.0, float(settings.BULK_RATE_PER_MINUTE))


def burst() -> float:
    """How many requests may go out at once after a quiet spell (BULK_RATE_BURST; 0: one
    second's worth of the rate)."""
    return max(1.0, float(settings.BULK_RATE_BURST) or rate_per_minute() / 60.0)


def reserve(
    cost: float = 1.0,
    *,
    name: str = COMPOSIO,
    per_minute: float | None = None,
    capacity: float | None = None,
    now: Callable[[], float] = time.time,
) -> float:
    """Take `cost` tokens from the bucket; return the seconds to wait before sending (0 = now)."""
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
                row.tokens = tokens
                row.updated_at = max(moment, row.updated_at)
                row.save(update_fields=["tokens", "updated_at"])
        except IntegrityError:
            # Two workers created the row at once; the loser reads the winner's row.
            continue
        return 0.0 if tokens >= 0 else -tokens / per_second
    raise RuntimeError("Could not reserve from the rate budget.")


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
