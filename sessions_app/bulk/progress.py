"""How far a bulk job has got: item counts, progress, how long it takes, its failed items.

Read-only: nothing here writes a row, so the job pages, the admin and the runners share it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count
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
        left = self.total - self.done
        if self.job.ended or left <= 0:
            return ""
        elapsed = (timezone.now() - self.job.created_at).total_seconds()
        if self.done and elapsed > 5:
            return duration_words(left * elapsed / self.done)
        return duration_words(expected_seconds(kind=self.job.kind, count=left))


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
