"""The runners of bulk jobs: the django-tasks task, its slots, and the pool that works on items.

A job arms `concurrency` runner slots; each slot is a chain of `bulk_job_run` tasks, and one
`db_worker` process runs one task at a time. The runner of a slot works on the job's items with a
pool of BULK_THREADS threads, each with its own database connection, while a semaphore (`_Gate`)
keeps at most BULK_CONCURRENCY Composio calls in flight: with more threads than calls, one
item's database work overlaps other items' calls. The runner claims items in batches (`SELECT
... FOR UPDATE SKIP LOCKED` on PostgreSQL) and pays the shared rate budget for a batch in one
reservation, then sends each item through the session services (`sessions_app.bulk.settle`),
which keep their promises: one intent and one audit event per attempt, the per-user lock, never a
blind re-send of a create that may have reached Composio. More worker processes, on this machine
or others sharing the PostgreSQL database, take the other slots and add throughput under the same
budget.

Every thread checks, before each item, what its runner last read of the job (at most
JOB_CHECK_SECONDS old): a 429 pauses the whole job (the thread that got it re-reads at once), a
cancel or a new token stops the runner, and an item whose lease is about to run out is put back
instead of being sent.

Surviving a killed worker: every item a runner has claimed carries a lease. A runner that starts
rotates its slot's token and enqueues a stand-in for the same slot (a dead man's switch, run
after BULK_DEADMAN_SECONDS); a live runner hands off to a fresh task every BULK_SLICE_SECONDS,
which makes the stand-in obsolete. If the worker dies, the stand-in takes over the slot when
workers run again, and an item whose lease expired is settled from its session intent: no intent
-> never sent, pending again; intent succeeded -> `succeeded`; intent pending or unknown ->
`unknown`. So items already succeeded are never sent again. Items a runner claimed but had not
sent when it stopped are put back (pending) before it ends.

Task arguments are ids and tokens only: never a secret.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import connections, transaction
from django.db.models import F, Min, Q
from django.utils import timezone
from django_tasks import task

from sessions_app.bulk.progress import (
    HEARTBEAT_EVERY,
    HEARTBEAT_FRESH,
    concurrency,
    heartbeat_key,
    requests_per_item,
)
from sessions_app.bulk.settle import (
    finish_if_done,
    process_item,
    recover_expired_items,
    settle_many,
)
from sessions_app.models import BulkJob, BulkJobItem, Toolkit
from sessions_app.tool_router import (
    health,
    rate_limit,
    records,
    remote_deletes,
    toolkit_catalog,
)

Item = BulkJobItem.State

logger = logging.getLogger(__name__)


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


def _take_slot(job_id: int, slot: int, token: str, deferring: bool) -> tuple[str, BulkJob] | None:
    """Become the slot's runner if `token` is still its token; leave a stand-in behind.
    Returns the token this runner holds the slot with and the job, or None if superseded."""
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.ended or job.runners.get(str(slot)) != token:
            return None
        if not deferring:
            return token, job
        new = uuid.uuid4().hex
        job.runners = {**job.runners, str(slot): new}
        job.save(update_fields=["runners"])
        # In the same transaction as the new token: if this worker dies, the stand-in is there.
        _enqueue(job_id, slot, new, run_after=timezone.now() + _deadman())
        return new, job


# --- The runner ----------------------------------------------------------------------------------

# How old the runner's reading of its job (state, pause, tokens) may be when a thread decides to
# send: a cancel or a 429 from another process is seen within this many seconds.
JOB_CHECK_SECONDS = 0.5
# Items claimed (and paid for) at once. A claimed item waits at most a batch's worth of calls
# before it is sent, far inside its lease.
CLAIM_BATCH = 32
# Settled items are written a batch at a time, at the latest this many seconds after the first of
# them settled (the job page's counts lag by as much), far inside their leases.
SETTLE_SECONDS = 1.0


def threads() -> int:
    """Threads one runner works with (BULK_THREADS)."""
    return max(1, int(settings.BULK_THREADS))


def bulk_job_run_slot(*, job_id: int, slot: int, token: str) -> str:
    """Work on a job's items as the runner of one slot; returns why it stopped.

    With the database backend the runner works with a pool of threads for one slice; with the
    immediate backend (which runs tasks inside the caller, in its transaction) in the caller's
    own thread until the job is done.
    """
    deferring = defers()
    taken = _take_slot(job_id, slot, token, deferring)
    if taken is None:
        return "superseded"
    current, job = taken
    health.warm_up()  # before the runner pays for a batch, not while its turns go by
    deadline = time.monotonic() + float(settings.BULK_SLICE_SECONDS) if deferring else math.inf
    actor = None
    if job.started_by_id is not None:
        actor = get_user_model().objects.filter(pk=job.started_by_id).first()
    runner = _Runner(
        job=job,
        slot=slot,
        token=current,
        deferring=deferring,
        deadline=deadline,
        actor=actor,
        threads=threads() if deferring else 1,
    )
    try:
        return runner.run()
    finally:
        # A runner that stops is no longer running: the job page counts only live runners.
        cache.delete(heartbeat_key(job_id, slot))


class _Gate:
    """At most `limit` Composio calls in flight at once (a semaphore the seam's transport enters
    around each request on the wire), and how many were in flight on average since it was last
    asked."""

    def __init__(self, limit: int) -> None:
        self._slots = threading.BoundedSemaphore(max(1, limit))
        self._lock = threading.Lock()
        self.in_flight = 0
        self._changed = self._window = time.monotonic()
        self._area = 0.0

    def _tick(self) -> float:
        now = time.monotonic()
        self._area += self.in_flight * (now - self._changed)
        self._changed = now
        return now

    def __enter__(self) -> None:
        self._slots.acquire()
        with self._lock:
            self._tick()
            self.in_flight += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._tick()
            self.in_flight -= 1
        self._slots.release()

    def average(self) -> float:
        """Calls in flight on average since the last time this was asked."""
        with self._lock:
            now = self._tick()
            span = now - self._window
            mean = self._area / span if span > 0 else float(self.in_flight)
            self._area, self._window = 0.0, now
            return mean


# An item this runner holds, when it may be sent (monotonic clock), and the reading of the toolkit
# table its batch was claimed with (what its toolkits are checked against).
Claimed = tuple[BulkJobItem, float, dict[str, Toolkit]]


class _Runner:
    """One runner holding one slot of a job until `deadline` (monotonic clock), with `threads`
    threads (1: the caller's own)."""

    def __init__(
        self,
        *,
        job: BulkJob,
        slot: int,
        token: str,
        deferring: bool,
        deadline: float,
        actor: AbstractBaseUser | None,
        threads: int,
    ) -> None:
        self.job = job
        self.slot = slot
        self.token = token
        self.deferring = deferring
        self.deadline = deadline
        self.actor = actor
        self.threads = threads
        self.gate = _Gate(concurrency())
        self.cost = requests_per_item(job.kind)
        # Items due while the runner could not keep up go out at the budget's pace, not at once.
        self.pace = rate_limit.Pacer(self.cost)
        self.lock = threading.Lock()
        # Held from taking the settled items to their commit: a thread that asks what is still
        # running after writing waits for another thread's write in flight.
        self.writing = threading.Lock()
        self.claimed: deque[Claimed] = deque()
        self.settled: list[tuple[int, dict[str, Any]]] = []  # not written yet (`_write_settled`)
        self.deleted: list[tuple[int, datetime]] = []  # old sessions' remote deletes, the same
        self.settled_since = math.inf
        self.busy = 0  # threads holding an item
        self.alive = 0
        self.stopped = ""  # why the runner stops (the first reason given)
        self.resume_at: datetime | None = None
        self.failure: BaseException | None = None
        self.job_row: dict[str, Any] | None = None
        self.read_at = -math.inf
        self.checked_leases = 0.0
        self.last_beat = -math.inf

    # -- the pool ---------------------------------------------------------------------------------

    def run(self) -> str:
        try:
            if self.threads == 1:
                self._work(own_thread=False)
            else:
                self._run_pool()
        finally:
            # Items settled before a failure too: written now, not left to their leases.
            self._write_settled()
        given_back = [item for item, _, _ in self.claimed]
        self._put_back(given_back)
        self.claimed.clear()
        if self.failure is not None:
            # The task fails; the slot's stand-in takes over, as after a crash.
            raise self.failure
        if given_back and self.stopped in ("idle", "done"):
            # A thread claimed a batch while another decided there was nothing left: the items
            # are pending again, and the slot goes on with them at once (not when its stand-in
            # runs, however many other runners stopped idle meanwhile).
            self.stopped = "sliced"
        return self._ended()

    def _run_pool(self) -> None:
        pool = [
            threading.Thread(
                target=self._work,
                kwargs={"own_thread": True},
                name=f"bulk-{self.job.pk}-{self.slot}-{n}",
                daemon=True,
            )
            for n in range(self.threads)
        ]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()

    def _work(self, *, own_thread: bool) -> None:
        with self.lock:
            self.alive += 1
        try:
            with rate_limit.gated(self.gate):
                while self._step():
                    pass
        except BaseException as exc:
            with self.lock:
                self.failure = self.failure or exc
            self._stop("failed")
            if not own_thread:
                raise
            logger.exception("bulk job %s: runner thread failed", self.job.pk)
        finally:
            with self.lock:
                self.alive -= 1
            if own_thread:
                connections.close_all()

    def _stop(self, why: str, *, resume_at: datetime | None = None) -> None:
        with self.lock:
            if not self.stopped:
                self.stopped = why
                self.resume_at = resume_at

    def _ended(self) -> str:
        why = self.stopped or "done"
        if why == "sliced":
            # The same token: whichever of this continuation and the stand-in starts first
            # takes over.
            _enqueue(self.job.pk, self.slot, self.token)
        elif why in ("paused", "waiting") and self.resume_at is not None:
            _enqueue(self.job.pk, self.slot, self.token, run_after=self.resume_at)
        elif why not in ("superseded", "failed"):
            # "idle" too: the runners still finishing may have written their last items while
            # this one looked, and each of them may have stopped "idle" on this one's.
            finish_if_done(self.job.pk)
        return why

    # -- one step of one thread ---------------------------------------------------------------

    def _step(self) -> bool:
        """Send at most one item; whether this thread goes round again."""
        if self.stopped or not self._may_go():
            return False
        self._beat()
        self._write_settled(older_than=SETTLE_SECONDS)
        self._recover_leases()
        claimed = self._next()
        if claimed is None:
            return self._nothing_to_claim()
        item, due, toolkits = claimed
        try:
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            # Late (this process starved of CPU, every thread busy): the pace decides when it is
            # awake to send, not when it took the item, so a backlog does not go out at once.
            with self.lock:
                start = self.pace.start(due, time.monotonic())
            wait = start - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            # Paused, cancelled or superseded while this thread waited its turn (as the runner's
            # reading of the job says, at most JOB_CHECK_SECONDS old: not read again for every
            # item that waited, which, when the rate budget binds, is every item): the tokens it
            # paid are lost, which only slows the budget down.
            lease_left = (item.lease_expires_at - timezone.now()).total_seconds()
            if not self._may_go() or lease_left < _lease().total_seconds() / 4:
                self._put_back([item])
                return not self.stopped
            with (
                toolkit_catalog.pinned(toolkits),
                remote_deletes.recorded_by(self._remote_deleted),
            ):
                state = process_item(
                    self.job, item, token=self.token, actor=self.actor, defer=self._settled
                )
            if state == Item.PENDING:
                # A retry or a 429 (the job paused): read the job again before the next item.
                self.read_at = -math.inf
            return True
        finally:
            with self.lock:
                self.busy -= 1

    def _may_go(self, *, fresh: bool = False) -> bool:
        """Whether this thread may send now, from the runner's reading of its job; sleeps
        through a pause that ends within the slice. False: the runner stops (`stopped` says
        why)."""
        while True:
            row = self._job_row(fresh=fresh)
            if row is None or row["runners"].get(str(self.slot)) != self.token:
                self._stop("superseded")
                return False
            if row["state"] != BulkJob.State.RUNNING:
                self._stop(row["state"])
                return False
            paused = row["paused_until"]
            if paused is None or paused <= timezone.now():
                break
            wait = (paused - timezone.now()).total_seconds()
            if time.monotonic() + wait > self.deadline:
                self._stop("paused", resume_at=paused)
                return False
            time.sleep(min(wait, 1.0))
            if self.stopped:
                return False
            fresh = True
        if time.monotonic() > self.deadline:
            self._stop("sliced")
            return False
        return not self.stopped

    def _job_row(self, *, fresh: bool) -> dict[str, Any] | None:
        with self.lock:
            if fresh or time.monotonic() - self.read_at > JOB_CHECK_SECONDS:
                self.job_row = (
                    BulkJob.objects.filter(pk=self.job.pk)
                    .values("state", "paused_until", "runners")
                    .first()
                )
                self.read_at = time.monotonic()
            return self.job_row

    def _next(self) -> Claimed | None:
        """The next item this runner holds (claiming and paying for a batch when it holds none),
        counted busy; None when no item is due."""
        with self.lock:
            if not self.claimed:
                items = _claim(self.job, self.token, limit=CLAIM_BATCH)
                waits = rate_limit.reserve_many(len(items), self.cost)
                toolkits = toolkit_catalog.read_toolkits() if items else {}
                now = time.monotonic()
                for item, wait in zip(items, waits, strict=True):
                    self.claimed.append((item, now + wait, toolkits))
            if not self.claimed:
                return None
            self.busy += 1
            return self.claimed.popleft()

    def _settled(self, pk: int, values: dict[str, Any]) -> None:
        """An item settled (terminal): written with the others of its batch."""
        with self.lock:
            self.settled.append((pk, values))
            self.settled_since = min(self.settled_since, time.monotonic())
            due = len(self.settled) >= CLAIM_BATCH
        if due:
            self._write_settled()

    def _remote_deleted(self, pk: int, at: datetime) -> None:
        """An old session deleted at Composio: recorded with the batch its item is written in."""
        with self.lock:
            self.deleted.append((pk, at))

    def _write_settled(self, *, older_than: float = 0.0) -> None:
        """Write the settled items in one statement, and the remote deletes their calls made in
        another (if the first item settled `older_than` seconds ago or more). Called with
        `older_than` (the timed write before each item) it leaves the items to a write already
        in flight instead of waiting for it; called without, it returns after that write too."""
        if not self.writing.acquire(blocking=not older_than):
            return
        try:
            with self.lock:
                if self.settled and time.monotonic() - self.settled_since < older_than:
                    return
                settled, self.settled, self.settled_since = self.settled, [], math.inf
                deleted, self.deleted = self.deleted, []
            if not settled and not deleted:
                return
            with transaction.atomic():
                settle_many(self.token, settled)
                records.mark_remote_deleted_many(deleted)
        finally:
            self.writing.release()

    def _nothing_to_claim(self) -> bool:
        """No item is due: wait for the next retry, leave the rest to the threads still busy,
        stop while other runners finish, or end the job. Whether this thread goes round again."""
        self._write_settled()
        job = self.job
        pending = job.items.filter(state=Item.PENDING)
        if pending.filter(Q(not_before__isnull=True) | Q(not_before__lte=timezone.now())).exists():
            # Due items another runner's claim holds locked this instant: claim again shortly
            # (stopping as "idle" would leave this slot empty until its stand-in runs).
            time.sleep(0.05)
            return True
        next_at = pending.aggregate(at=Min("not_before"))["at"]
        if next_at is not None:
            wait = max(0.0, (next_at - timezone.now()).total_seconds())
            if time.monotonic() + wait > self.deadline:
                self._stop("waiting", resume_at=next_at)
                return False
            time.sleep(min(wait, 1.0) + 0.01)
            return True
        with self.lock:
            others_busy = self.busy > 0
        if others_busy:
            # This runner's other threads finish what they hold (and any retry of it).
            return False
        # None of this runner's threads holds an item now, so every item they settled is in
        # `settled` or in a write another thread has in flight: written (or waited for, under
        # `writing`) before asking what is still running. (Otherwise an item another thread
        # settled meanwhile still read `running` here: the runner stopped as "idle" with nothing
        # left, and the job ended only when the slot's stand-in ran, BULK_DEADMAN_SECONDS later.)
        self._write_settled()
        if job.items.filter(state=Item.RUNNING).exists():
            if not self.deferring:
                time.sleep(0.2)
                recover_expired_items(job)
                return True
            # Other runners are finishing; their stand-ins cover them if they die.
            self._stop("idle")
            return False
        self._stop("done")
        return False

    def _beat(self) -> None:
        """Tell the job pages what this runner is doing (in the shared cache, every few seconds):
        its threads and the calls it had in flight on average since the last beat."""
        with self.lock:
            if time.monotonic() - self.last_beat < HEARTBEAT_EVERY:
                return
            self.last_beat = time.monotonic()
            beat = {"at": time.time(), "threads": self.alive, "in_flight": self.gate.average()}
        cache.set(heartbeat_key(self.job.pk, self.slot), beat, timeout=HEARTBEAT_FRESH)

    def _recover_leases(self) -> None:
        with self.lock:
            if time.monotonic() - self.checked_leases <= 2.0:
                return
            self.checked_leases = time.monotonic()
        recover_expired_items(self.job)

    def _put_back(self, items: list[BulkJobItem]) -> None:
        """Give back items this runner claimed but did not send: pending again, unattempted."""
        if items:
            BulkJobItem.objects.filter(
                pk__in=[item.pk for item in items], state=Item.RUNNING, runner=self.token
            ).update(
                state=Item.PENDING,
                runner="",
                lease_expires_at=None,
                attempts=F("attempts") - 1,
            )


def _claim(job: BulkJob, token: str, *, limit: int) -> list[BulkJobItem]:
    """Take up to `limit` of the job's due pending items for this runner, in item order
    (attempt counted, lease set): two statements, whatever the number of items."""
    now = timezone.now()
    lease = now + _lease()
    with transaction.atomic():
        items = list(
            BulkJobItem.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("end_user")
            .filter(job_id=job.pk, state=Item.PENDING)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .order_by("id")[:limit]
        )
        if not items:
            return []
        BulkJobItem.objects.filter(pk__in=[item.pk for item in items]).update(
            state=Item.RUNNING,
            runner=token,
            attempts=F("attempts") + 1,
            started_at=now,
            lease_expires_at=lease,
            not_before=None,
        )
    for item in items:
        item.state = Item.RUNNING
        item.runner = token
        item.attempts += 1
        item.started_at = now
        item.lease_expires_at = lease
        item.not_before = None
    return items
