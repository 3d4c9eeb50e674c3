"""Progress that tells the truth (issue 15): how many items really run at once, a remaining time
measured from the last minute's pace that stays steady, an item table that moves with the bar,
and no Cancel once the job has ended, on the console's job page and the admin's."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sessions_app.bulk import progress, runner
from sessions_app.composio.emulator import Emulator
from sessions_app.models import BulkJob, BulkJobItem
from tests.factories import HX, make_end_users, start_bulk_job

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_bulk")]


@pytest.fixture
def eight_slots_job(catalog: Emulator, session_admin: User, queued: None, settings) -> BulkJob:
    """A create job over six users, configured for 8 runner slots, with no worker running yet."""
    settings.BULK_CONCURRENCY = 8
    make_end_users(6, digits=2)
    return start_bulk_job("create", ["github"], session_admin)


def job_page(client: Client, job: BulkJob) -> str:
    return client.get(reverse("bulk:job_detail", args=[job.public_id])).content.decode()


def poll_url(html: str) -> str:
    """The URL the page's live part polls (hx-get), as the browser would request it."""
    match = re.search(r'id="job-live"[^>]*hx-get="([^"]+)"', html)
    assert match, "the page does not poll"
    return unescape(match.group(1))


def run_to_the_end(job: BulkJob) -> None:
    """Every slot's runner works until the job's items are done (as workers would)."""
    job.refresh_from_db()
    for slot, token in job.runners.items():
        runner.bulk_job_run_slot(job_id=job.pk, slot=int(slot), token=token)
    job.refresh_from_db()


# --- how many run at once -----------------------------------------------------------------------


def test_the_job_page_counts_the_runners_that_beat_not_the_configured_slots(
    session_admin_client: Client, eight_slots_job: BulkJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No worker has picked the job up: the page says so instead of "8 at a time".
    html = job_page(session_admin_client, eight_slots_job)
    assert 'data-running="0"' in html and "waiting for a worker" in html
    assert "8 at a time" not in html

    # One worker runs one slot with one thread (the test's), beating before every item.
    monkeypatch.setattr(runner, "HEARTBEAT_EVERY", 0.0)
    slot = runner._Runner(
        job=eight_slots_job,
        slot=0,
        token=eight_slots_job.runners["0"],
        deferring=True,
        deadline=math.inf,
        actor=eight_slots_job.started_by,
        threads=1,
    )
    slot._work(own_thread=False)
    running = progress.running_now(eight_slots_job)
    # The last beat measured the calls in flight while the last item was sent: one at most.
    assert (running.runners, running.threads) == (1, 1) and 0 < running.in_flight <= 1
    html = job_page(session_admin_client, eight_slots_job)
    assert 'data-running="1"' in html and 'data-threads="1"' in html
    assert f"{running.calls} calls in flight</strong> on 1 thread in 1 worker" in html
    assert "up to 8 runner slots" in html

    # A runner that stops drops its beat; a stale beat (a dead worker) does not count.
    assert progress.running_at_once(eight_slots_job, now=10**10) == 0
    run_to_the_end(eight_slots_job)
    assert progress.running_at_once(eight_slots_job) == 0


# --- the remaining time ---------------------------------------------------------------------------


@pytest.fixture
def paced_job(session_admin: User, settings) -> tuple[BulkJob, object]:
    """A 562-user create job (the issue's) that really ran at 8 users/s, its worker starting 6 s
    after the job: each item's start and finish on that timeline. The budget (1,200/min, one
    request per user) alone would allow 20 users/s, about 28 s for the whole job."""
    settings.BULK_RATE_PER_MINUTE = 1200
    job = BulkJob.objects.create(
        kind=BulkJob.Kind.CREATE, total=562, concurrency=8, rate_per_minute=1200
    )
    t0 = job.created_at
    users = make_end_users(562, prefix="pace", digits=3)
    BulkJobItem.objects.bulk_create(
        BulkJobItem(
            job=job,
            end_user=user,
            state=BulkJobItem.State.SUCCEEDED,
            attempts=1,
            started_at=t0 + timedelta(seconds=6 + n / 8),
            finished_at=t0 + timedelta(seconds=6 + (n + 1) / 8),
        )
        for n, user in enumerate(users)
    )
    return job, t0


def test_the_remaining_time_follows_the_measured_pace_and_stays_steady(
    paced_job: tuple[BulkJob, object],
) -> None:
    job, t0 = paced_job
    finishes = sorted(job.items.values_list("finished_at", flat=True))
    estimates = []
    for second in range(1, 76):
        now = t0 + timedelta(seconds=second)
        left = sum(1 for at in finishes if at > now)
        estimate = progress.remaining(job, left=left, now=now)
        if left == 0:
            assert estimate is None
            continue
        floor = left / 20  # the budget's pace: never promise faster than that
        assert estimate.seconds >= floor - 1e-6, second
        if not estimate.measured:
            # Before any pace is measured: the budget's floor, said as a floor.
            assert second < 12 and estimate.words.startswith("at least"), (second, estimate)
            continue
        truth = left / 8
        assert abs(estimate.seconds - truth) <= 0.2 * truth + 1, (second, estimate, truth)
        estimates.append((second, estimate.seconds))
    # Steady: once measured, it only counts down (no 28 s -> 7 min -> 87 s).
    for (_, before), (second, after) in zip(estimates, estimates[1:], strict=False):
        assert after <= before + 1, (second, before, after)
    assert len(estimates) > 50


def test_the_page_says_at_least_the_budgets_time_until_it_has_measured(
    session_admin_client: Client, eight_slots_job: BulkJob, settings
) -> None:
    settings.BULK_RATE_PER_MINUTE = 60
    html = job_page(session_admin_client, eight_slots_job)
    assert "at least 6 seconds left (measuring the pace)" in html


# --- the live part: items and Cancel follow the job ---------------------------------------------


def test_the_admin_item_table_and_cancel_follow_the_job_to_its_end(
    session_admin_client: Client, eight_slots_job: BulkJob
) -> None:
    admin_url = reverse("admin:sessions_app_bulkjob_change", args=[eight_slots_job.pk])
    page = session_admin_client.get(admin_url).content.decode()
    assert page.count('class="badge bulk-item-pending"') == 6
    assert "Cancel the job" in page
    url = poll_url(page)
    assert url.startswith(reverse("bulk:job_progress", args=[eight_slots_job.public_id]))

    run_to_the_end(eight_slots_job)
    assert eight_slots_job.state == "finished"

    # What the page's next poll brings: every row's final state, no Cancel, no more polling,
    # and the forms still lead back to the admin's page.
    live = session_admin_client.get(url, headers=HX).content.decode()
    assert live.count('class="badge bulk-item-succeeded"') == 6
    assert "bulk-item-pending" not in live
    assert "6 of 6" in live and "100%" in live
    assert "Cancel the job" not in live and "hx-trigger" not in live
    assert 'class="module' not in live and 'class="card' not in live


def test_the_console_job_page_polls_its_filter_and_page_and_drops_cancel_at_the_end(
    session_admin_client: Client, eight_slots_job: BulkJob
) -> None:
    page = session_admin_client.get(
        reverse("bulk:job_detail", args=[eight_slots_job.public_id]) + "?state=pending"
    ).content.decode()
    url = poll_url(page)
    assert "state=pending" in url and "next=" not in url
    running = session_admin_client.get(url, headers=HX).content.decode()
    assert "Cancel the job" in running and 'class="card' in running

    run_to_the_end(eight_slots_job)
    ended = session_admin_client.get(url, headers=HX).content.decode()
    assert "Cancel the job" not in ended
    assert "No end users in this state." in ended


def test_a_foreign_next_is_not_put_in_the_forms(
    session_admin_client: Client, eight_slots_job: BulkJob
) -> None:
    url = reverse("bulk:job_progress", args=[eight_slots_job.public_id])
    live = session_admin_client.get(
        url + "?next=https://evil.example/x", headers=HX
    ).content.decode()
    assert "evil.example" not in live
