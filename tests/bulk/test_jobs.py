"""Bulk jobs through the bulk service and the emulator: start, cancel and retry failed
(immediate task backend unless a test queues)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError

from sessions_app.bulk import jobs as bulk
from sessions_app.bulk import runner, settle
from sessions_app.composio.emulator import Emulator
from sessions_app.models import (
    AuditEvent,
    BulkJob,
    BulkJobItem,
    SessionOperation,
    ToolRouterSession,
)
from tests.factories import give_session, make_end_users, start_bulk_job
from tests.helpers import item_states

# Jobs run at once unless a test asks for the `queued` backend (which then wins).
pytestmark = pytest.mark.usefixtures("fast_bulk", "immediate")


def test_a_create_job_gives_every_selected_user_a_session(
    catalog: Emulator, session_admin: User
) -> None:
    make_end_users(30)

    job = start_bulk_job("create", ["github"], session_admin)

    assert job.state == "finished"
    assert item_states(job) == {"succeeded": 30}
    assert job.counts["succeeded"] == 30
    assert catalog.count("session.create") == 30
    assert ToolRouterSession.objects.filter(status="active").count() == 30
    assert all(i.session_id for i in job.items.all())
    start, end = AuditEvent.objects.filter(action__startswith="bulk.").order_by("sequence")
    assert (start.action, end.action) == ("bulk.start", "bulk.end")
    assert end.details["counts"]["succeeded"] == 30


def test_a_refresh_job_keeps_each_users_toolkits_and_skips_users_without_a_session(
    catalog: Emulator, session_admin: User
) -> None:
    users = make_end_users(4)
    give_session(users[0], ["github"], session_admin)
    give_session(users[1], ["slack"], session_admin)

    job = start_bulk_job("refresh", None, session_admin)

    assert item_states(job) == {"succeeded": 2, "skipped": 2}
    active = dict(
        ToolRouterSession.objects.filter(status="active").values_list(
            "end_user__external_id", "toolkits"
        )
    )
    assert active == {users[0].external_id: ["github"], users[1].external_id: ["slack"]}
    assert catalog.count("session.delete") == 2
    skipped = job.items.filter(state="skipped").first()
    assert "no active session" in skipped.last_error


def test_a_user_locked_by_a_manual_change_is_skipped_with_the_reason(
    catalog: Emulator, session_admin: User
) -> None:
    busy = make_end_users(3)[0]
    # A manual refresh of this user is in flight (its intent is committed, the call not done).
    SessionOperation.objects.create(kind="refresh", end_user=busy, actor=session_admin)

    job = start_bulk_job("create", ["github"], session_admin)

    item = job.items.get(end_user=busy)
    assert item.state == "skipped"
    assert "already in progress" in item.last_error
    assert item_states(job) == {"succeeded": 2, "skipped": 1}
    assert not ToolRouterSession.objects.filter(end_user=busy).exists()


def test_starting_needs_the_permission_of_the_operation(
    catalog: Emulator, support_user: User
) -> None:
    make_end_users(2)
    with pytest.raises(PermissionDenied):
        start_bulk_job("refresh", None, support_user)
    assert not BulkJob.objects.exists()
    refused = AuditEvent.objects.get(action="access.refused")
    assert refused.details["operation"] == "bulk.refresh"
    assert refused.details["missing"] == ["sessions_app.refresh_session"]


def test_starting_with_a_disallowed_toolkit_writes_nothing_and_says_why(
    catalog: Emulator, session_admin: User
) -> None:
    make_end_users(2)
    with pytest.raises(ValidationError, match="Not on the allow-list: jira"):
        start_bulk_job("create", ["github", "jira"], session_admin)
    assert not BulkJob.objects.exists() and not BulkJobItem.objects.exists()
    assert AuditEvent.objects.get(action="input.rejected").outcome == "rejected"
    assert catalog.count("session.create") == 0


def test_cancelling_a_queued_job_skips_every_item_and_sends_nothing(
    catalog: Emulator, session_admin: User, queued: None
) -> None:
    make_end_users(25)
    job = start_bulk_job("create", ["github"], session_admin)
    assert job.state == "running" and item_states(job) == {"pending": 25}

    skipped = bulk.bulk_job_cancel(job=job, actor=session_admin)

    assert skipped == 25
    assert job.state == "cancelled" and item_states(job) == {"skipped": 25}
    assert "Cancelled by ada_admin" in job.items.first().last_error
    end = AuditEvent.objects.get(action="bulk.end")
    assert end.details["cancelled_by"] == "ada_admin" and end.details["state"] == "cancelled"
    assert catalog.count("session.create") == 0
    with pytest.raises(ValidationError, match="already ended"):
        bulk.bulk_job_cancel(job=job, actor=session_admin)


def test_a_cancelled_job_ends_only_after_the_item_in_flight_has_settled(
    catalog: Emulator, session_admin: User, queued: None
) -> None:
    make_end_users(3)
    job = start_bulk_job("create", ["github"], session_admin)
    [item] = runner._claim(job, "runner-a", limit=1)

    bulk.bulk_job_cancel(job=job, actor=session_admin)
    assert job.state == "cancelling" and item_states(job) == {"running": 1, "skipped": 2}

    settle.process_item(job, item, token="runner-a", actor=session_admin)
    settle.finish_if_done(job.pk)
    job.refresh_from_db()
    assert job.state == "cancelled" and item_states(job) == {"succeeded": 1, "skipped": 2}


def test_retry_failed_resends_failed_items_but_never_unknown_ones(
    catalog: Emulator, session_admin: User
) -> None:
    make_end_users(6)
    catalog.faults.enqueue(400, endpoint="session.create", times=2)
    catalog.faults.truncated(endpoint="session.create")
    job = start_bulk_job("create", ["github"], session_admin)
    assert item_states(job) == {"failed": 2, "unknown": 1, "succeeded": 3}

    retried = bulk.bulk_job_retry_failed(job=job, actor=session_admin)

    assert retried == 2
    assert job.state == "finished" and item_states(job) == {"unknown": 1, "succeeded": 5}
    assert catalog.count("session.create") == 6 + 2
    assert bulk.bulk_job_retry_failed(job=job, actor=session_admin) == 0
    assert list(
        AuditEvent.objects.filter(action__startswith="bulk.")
        .order_by("sequence")
        .values_list("action", flat=True)
    ) == ["bulk.start", "bulk.end", "bulk.start", "bulk.end"]
