"""How far a bulk job has got: item counts, progress, how long it takes, its failed items.

Read-only: nothing here writes a row, so the job pages, the admin and the runners share it.

Two figures are measured, never taken from the configuration (issue 15):

- how many items run at once: the runners whose heartbeat is fresh, their threads, and the
  Composio calls they had in flight. Each runner beats in the shared cache while it works
  (`heartbeat_key`, at most every HEARTBEAT_EVERY seconds) with its live threads and its calls
  in flight averaged since its last beat (measured at the semaphore every call passes), and
  drops its beat when it stops: one worker reads as one runner, never as the job's 8 slots;
- the remaining time: the items left at the throughput measured over the last minute (since the
  first item started, if that is more recent), never less than the rate budget allows. Until
  MIN_MEASURE_SECONDS of work and one finished item are measured, the page gives the budget's
  floor ("at least ...") and says it is still measuring, so the figure does not jump.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min
from django.utils import timezone

from sessions_app.models import BulkJob, BulkJobItem
from sessions_app.tool_router import rate_limit

Item = BulkJobItem.State
ACTIVE_ITEM_STATES = (Item.PENDING, Item.RUNNING)
TERMINAL_ITEM_STATES = (Item.SUCCEEDED, Item.FAILED, Item.UNKNOWN, Item.SKIPPED)

# Requests one item sends to Composio: a refresh creates the new session, then deletes the old.
_REQUESTS_PER_ITEM = {
    BulkJob.Kind.CREATE: 1,
    BulkJob.Kind.REFRESH: 2,
    BulkJob.Kind.RECREATE: 2,
}

# A runner beats at most this often; a beat older than HEARTBEAT_FRESH seconds is a runner gone.
HEARTBEAT_EVERY = 2.0
HEARTBEAT_FRESH = 15.0
# The throughput is measured over this window, once this much work has been seen.
PACE_WINDOW_SECONDS = 60.0
MIN_MEASURE_SECONDS = 5.0

# One failed or unknown item, as the failures download lists it.
FailedItem = tuple[str, str, int, str, datetime | None]


def requests_per_item(kind: str) -> int:
    """How many Composio requests one item of a `kind` job spends from the rate budget."""
    return _REQUESTS_PER_ITEM[BulkJob.Kind(kind)]


def expected_seconds(*, kind: str, count: int) -> float:
    """How long `count` users take at the configured rate budget (the binding limit at scale)."""
    return count * requests_per_item(kind) / (rate_limit.rate_per_minute() / 60.0)


def duration_words(seconds: float) -> str:
    """A duration as a person says it: seconds, minutes, or hours with one decimal."""
    if seconds < 90:
        return f"{max(1, math.ceil(seconds))} seconds"
    if seconds < 90 * 60:
        return f"{math.ceil(seconds / 60)} minutes"
    return f"{seconds / 3600:.1f} hours"


def heartbeat_key(job_id: int, slot: int) -> str:
    """The shared-cache key of one runner slot's heartbeat (the time it last beat)."""
    return f"bulk:heartbeat:{job_id}:{slot}"


@dataclass(frozen=True)
class Running:
    """What a job's live runners said in their last heartbeats: how many beat, their threads,
    and the Composio calls they had in flight (on average over the few seconds before each
    beat)."""

    runners: int = 0
    threads: int = 0
    in_flight: float = 0.0

    def __bool__(self) -> bool:
        return self.runners > 0

    @property
    def calls(self) -> str:
        """Calls in flight as a person reads them (one decimal)."""
        return f"{self.in_flight:.1f}"


def _beat_fields(beat: object) -> tuple[float, int, float]:
    """(when, threads, calls in flight) of one heartbeat; a bare time is a runner of one thread
    from before threads (one call in flight)."""
    if isinstance(beat, dict):
        return float(beat["at"]), int(beat["threads"]), float(beat["in_flight"])
    return float(beat), 1, 1.0  # type: ignore[arg-type]


def running_now(job: BulkJob, *, now: float | None = None) -> Running:
    """The job's runners working now, from their heartbeats (a stale beat: a runner gone)."""
    now = time.time() if now is None else now
    keys = [heartbeat_key(job.pk, slot) for slot in range(max(job.concurrency, 1))]
    fresh = [
        fields
        for fields in map(_beat_fields, cache.get_many(keys).values())
        if now - fields[0] <= HEARTBEAT_FRESH
    ]
    return Running(
        runners=len(fresh),
        threads=sum(threads for _, threads, _ in fresh),
        in_flight=sum(calls for _, _, calls in fresh),
    )


def running_at_once(job: BulkJob, *, now: float | None = None) -> int:
    """How many of the job's runner slots are working now, from their heartbeats."""
    return running_now(job, now=now).runners


@dataclass(frozen=True)
class Remaining:
    """How long the items left take: `seconds`, and whether that is measured or only the rate
    budget's floor (`measured` False: the pace is not known yet)."""

    seconds: float
    measured: bool

    @property
    def words(self) -> str:
        if self.measured:
            return f"about {duration_words(self.seconds)} left"
        return f"at least {duration_words(self.seconds)} left (measuring the pace)"


def remaining(job: BulkJob, *, left: int, now: datetime | None = None) -> Remaining | None:
    """The time the `left` items of `job` take at the pace of the last minute, bounded below by
    the rate budget; None when nothing is left."""
    if left <= 0:
        return None
    now = now or timezone.now()
    floor = expected_seconds(kind=job.kind, count=left)
    first = job.items.aggregate(at=Min("started_at"))["at"]
    if first is None or first > now:
        return Remaining(floor, measured=False)
    since = max(first, now - timedelta(seconds=PACE_WINDOW_SECONDS))
    window = (now - since).total_seconds()
    finished = job.items.filter(
        state__in=TERMINAL_ITEM_STATES, finished_at__gt=since, finished_at__lte=now
    ).count()
    if window < MIN_MEASURE_SECONDS or finished == 0:
        return Remaining(floor, measured=False)
    return Remaining(max(floor, left * window / finished), measured=True)


@dataclass(frozen=True)
class Progress:
    """A job and its item counts by state, as the job pages show them."""

    job: BulkJob
    counts: dict[str, int]
    total: int

    @property
    def done(self) -> int:
        return sum(self.counts.get(s, 0) for s in TERMINAL_ITEM_STATES)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 100

    @property
    def rows(self) -> list[tuple[str, str, int]]:
        """(state, label, count) for every item state, in the order a person reads them."""
        return [(value, label, self.counts.get(value, 0)) for value, label in Item.choices]

    @property
    def needs_attention(self) -> int:
        return self.counts.get(Item.FAILED, 0) + self.counts.get(Item.UNKNOWN, 0)

    @property
    def paused_seconds(self) -> int:
        until = self.job.paused_until
        if self.job.ended or until is None:
            return 0
        return max(0, math.ceil((until - timezone.now()).total_seconds()))

    @property
    def remaining_words(self) -> str:
        if self.job.ended:
            return ""
        left = remaining(self.job, left=self.total - self.done)
        return left.words if left else ""

    @cached_property
    def running(self) -> Running:
        """The job's runners working now, from their heartbeats (none once the job has ended)."""
        return Running() if self.job.ended else running_now(self.job)

    @property
    def calls_per_runner(self) -> int:
        return concurrency()


def item_counts(job: BulkJob) -> dict[str, int]:
    """How many of the job's items are in each state (every state present, zero if none)."""
    counts = dict.fromkeys(Item.values, 0)
    rows = BulkJobItem.objects.filter(job=job).values("state").annotate(n=Count("id")).order_by()
    for row in rows:
        counts[row["state"]] = row["n"]
    return counts


def bulk_job_progress(job: BulkJob) -> Progress:
    return Progress(job=job, counts=item_counts(job), total=job.total)


def failed_items(job: BulkJob) -> Iterator[FailedItem]:
    """The job's failed and unknown items in item order, read in chunks: (external id, state,
    attempts, last error, finished at)."""
    items = (
        BulkJobItem.objects.filter(job=job, state__in=[Item.FAILED, Item.UNKNOWN])
        .order_by("id")
        .values_list("end_user__external_id", "state", "attempts", "last_error", "finished_at")
    )
    return items.iterator(chunk_size=2000)


def concurrency() -> int:
    """Runner slots per job: at most this many items of one job are in flight at once."""
    return max(1, int(settings.BULK_CONCURRENCY))


@dataclass(frozen=True)
class Estimate:
    """What starting a job of `count` users will take, for the confirmation page."""

    expected: str
    rate_per_minute: int
    requests_per_item: int
    concurrency: int


def estimate(*, kind: str, count: int) -> Estimate:
    return Estimate(
        expected=duration_words(expected_seconds(kind=kind, count=count)),
        rate_per_minute=int(rate_limit.rate_per_minute()),
        requests_per_item=requests_per_item(kind),
        concurrency=concurrency(),
    )
