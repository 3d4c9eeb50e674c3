"""The runners of bulk jobs: the django-tasks task, its slots, and the loop that claims items.

A job arms `concurrency` runner slots; each slot is a chain of `bulk_job_run` tasks that claim
the job's items one at a time (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL) and send each
through the session services (`sessions_app.bulk.settle`), which keep their promises: one intent
and one audit event per attempt, the per-user lock, never a blind re-send of a create that may
have reached Composio. A 429 pauses the whole job: no runner sends anything until it is over.

Surviving a killed worker: every item a runner works on carries a lease. A runner that starts
rotates its slot's token and enqueues a stand-in for the same slot (a dead man's switch, run
after BULK_DEADMAN_SECONDS); a live runner hands off to a fresh task every BULK_SLICE_SECONDS,
which makes the stand-in obsolete. If the worker dies, the stand-in takes over the slot when
workers run again, and an item whose lease expired is settled from its session intent: no intent
-> never sent, pending again; intent succeeded -> `succeeded`; intent pending or unknown ->
`unknown`. So items already succeeded are never sent again.

Task arguments are ids and tokens only: never a secret.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone
from django_tasks import task

from sessions_app.bulk.progress import (
    HEARTBEAT_EVERY,
    HEARTBEAT_FRESH,
    heartbeat_key,
    requests_per_item,
)
from sessions_app.bulk.settle import finish_if_done, process_item, recover_expired_items
from sessions_app.models import BulkJob, BulkJobItem
from sessions_app.tool_router import rate_limit

Item = BulkJobItem.State

# A step of the slot loop that answers this goes round again; any other answer is why it stops.
_AGAIN = ""


@task()
def bulk_job_run(job_id: int, slot: int, token: str) -> str:
    """Run one slot of a bulk job for a while; returns why the runner stopped."""
    return bulk_job_run_slot(job_id=job_id, slot=slot, token=token)


def _lease() -> timedelta:
    return timedelta(seconds=settings.BULK_LEASE_SECONDS)


def _deadman() -> timedelta:
    return timedelta(seconds=settings.BULK_DEADMAN_SECONDS)


# --- Arming slots ------------------------------------------------------------------------------


def defers() -> bool:
    """Whether the task backend can run a task later (the database backend can; the immediate
    backend runs tasks inside enqueue, so runners then work until the job is done)."""
    return bool(bulk_job_run.get_backend().supports_defer)


def _enqueue(job_id: int, slot: int, token: str, *, run_after: datetime | None = None) -> None:
    """Queue a runner for one slot of the job, now or from `run_after` on."""
    runner = bulk_job_run if run_after is None else bulk_job_run.using(run_after=run_after)
    runner.enqueue(job_id, slot, token)


def arm_slots(job: BulkJob) -> None:
    """Give every slot of the job a new token and queue a runner for it (a runner still alive
    with an old token stops at its next step)."""
    tokens = {str(slot): uuid.uuid4().hex for slot in range(job.concurrency)}
    BulkJob.objects.filter(pk=job.pk).update(runners=tokens)
    for slot, token in tokens.items():
        _enqueue(job.pk, int(slot), token)


@contextmanager
def arming() -> Iterator[Callable[[BulkJob], None]]:
    """A transaction that hands back `arm(job)`, which arms the job's slots.

    When the backend defers, the runners are queued inside the transaction: they commit with
    the job's rows, or not at all. The immediate backend runs each runner inside enqueue, so
    then they are armed after the transaction has committed (and not if it failed).
    """
    later: list[BulkJob] = []
    deferring = defers()
    with transaction.atomic():
        yield arm_slots if deferring else later.append
    for job in later:
        arm_slots(job)


def _take_slot(job_id: int, slot: int, token: str, deferring: bool) -> str | None:
    """Become the slot's runner if `token` is still its token; leave a stand-in behind.
    Returns the token this runner holds the slot with, or None if it was superseded."""
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.ended or job.runners.get(str(slot)) != token:
            return None
        if not deferring:
            return token
        new = uuid.uuid4().hex
        job.runners = {**job.runners, str(slot): new}
        job.save(update_fields=["runners"])
        # In the same transaction as the new token: if this worker dies, the stand-in is there.
        _enqueue(job_id, slot, new, run_after=timezone.now() + _deadman())
        return new


# --- The slot loop -----------------------------------------------------------------------------


def bulk_job_run_slot(*, job_id: int, slot: int, token: str) -> str:
    """Work on a job's items as the runner of one slot; returns why it stopped."""
    deferring = defers()
    current = _take_slot(job_id, slot, token, deferring)
    if current is None:
        return "superseded"
    deadline = time.monotonic() + float(settings.BULK_SLICE_SECONDS) if deferring else math.inf
    runner = _SlotRunner(
        job_id=job_id, slot=slot, token=current, deferring=deferring, deadline=deadline
    )
    try:
        while True:
            stop = runner.step()
            if stop != _AGAIN:
                return stop
    finally:
        # A runner that stops is no longer running: the job page counts only live slots.
        cache.delete(heartbeat_key(job_id, slot))


@dataclass
class _SlotRunner:
    """One runner holding one slot of a job until `deadline` (monotonic clock)."""

    job_id: int
    slot: int
    token: str
    deferring: bool
    deadline: float
    actor: AbstractBaseUser | None = None
    checked_leases: float = 0.0
    last_beat: float = 0.0

    def beat(self) -> None:
        """Tell the job pages this slot is working (in the shared cache, every few seconds)."""
        if time.monotonic() - self.last_beat < HEARTBEAT_EVERY:
            return
        cache.set(heartbeat_key(self.job_id, self.slot), time.time(), timeout=HEARTBEAT_FRESH)
        self.last_beat = time.monotonic()

    def step(self) -> str:
        """Send at most one item; `_AGAIN` to go round again, else why the runner stops."""
        job = BulkJob.objects.filter(pk=self.job_id).first()
        if job is None or job.runners.get(str(self.slot)) != self.token:
            return "superseded"
        if job.state != BulkJob.State.RUNNING:
            finish_if_done(self.job_id)
            return job.state
        self.beat()
        if job.paused_until is not None and job.paused_until > timezone.now():
            return self._wait_until(job.paused_until, stop="paused")
        if time.monotonic() > self.deadline:
            # The same token: whichever of this continuation and the stand-in starts first
            # takes over.
            _enqueue(self.job_id, self.slot, self.token)
            return "sliced"
        if time.monotonic() - self.checked_leases > 2.0:
            recover_expired_items(job)
            self.checked_leases = time.monotonic()
        waited = rate_limit.take(requests_per_item(job.kind))
        if waited > 0.05 and not _still_go(self.job_id, self.slot, self.token):
            # Paused, cancelled or superseded while this runner waited its turn: the tokens it
            # paid are lost, which only slows the budget down. Otherwise it spends them below
            # (looping back to reserve again would never send once the budget binds).
            return _AGAIN
        item = _claim_next(job, self.token)
        if item is None:
            return self._nothing_to_claim(job)
        if self.actor is None and job.started_by_id is not None:
            self.actor = get_user_model().objects.filter(pk=job.started_by_id).first()
        process_item(job, item, token=self.token, actor=self.actor)
        return _AGAIN

    def _wait_until(self, at: datetime, *, stop: str, pad: float = 0.0) -> str:
        """Sleep towards `at` (a second at a time) or, if it is past this runner's slice,
        hand the slot to a runner queued for `at` and stop with `stop`."""
        wait = max(0.0, (at - timezone.now()).total_seconds())
        if time.monotonic() + wait > self.deadline:
            _enqueue(self.job_id, self.slot, self.token, run_after=at)
            return stop
        time.sleep(min(wait, 1.0) + pad)
        return _AGAIN

    def _nothing_to_claim(self, job: BulkJob) -> str:
        """No item is due: wait for the next retry, for the other runners, or end the job."""
        pending = job.items.filter(state=Item.PENDING)
        next_at = pending.aggregate(at=Min("not_before"))["at"] if pending.exists() else None
        if next_at is not None:
            return self._wait_until(next_at, stop="waiting", pad=0.01)
        if job.items.filter(state=Item.RUNNING).exists():
            if not self.deferring:
                time.sleep(0.2)
                recover_expired_items(job)
                return _AGAIN
            # Other runners are finishing; their stand-ins cover them if they die.
            return "idle"
        finish_if_done(self.job_id)
        return "done"


def _still_go(job_id: int, slot: int, token: str) -> bool:
    """Whether this runner may still send now: its job runs, unpaused, and the slot is its own."""
    row = BulkJob.objects.filter(pk=job_id).values("state", "paused_until", "runners").first()
    return bool(
        row is not None
        and row["state"] == BulkJob.State.RUNNING
        and row["runners"].get(str(slot)) == token
        and (row["paused_until"] is None or row["paused_until"] <= timezone.now())
    )


def _claim_next(job: BulkJob, token: str) -> BulkJobItem | None:
    """Take the job's next due pending item for this runner (attempt counted, lease set)."""
    now = timezone.now()
    with transaction.atomic():
        item = (
            BulkJobItem.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("end_user")
            .filter(job_id=job.pk, state=Item.PENDING)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .order_by("id")
            .first()
        )
        if item is None:
            return None
        item.state = Item.RUNNING
        item.runner = token
        item.attempts += 1
        item.started_at = now
        item.lease_expires_at = now + _lease()
        item.not_before = None
        item.save(
            update_fields=[
                "state",
                "runner",
                "attempts",
                "started_at",
                "lease_expires_at",
                "not_before",
            ]
        )
    return item
