"""The task workers close ended refusal windows and anchor the audit chain every
AUDIT_HOUSEKEEPING_SECONDS once it is booked."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from sessions_app import housekeeping, trail
from sessions_app.chain.anchors import read_anchors
from sessions_app.models import AuditEvent, RefusalWindow
from tests.helpers import refusals_at, refuse
from tests.task_queue import run_queue_once

pytestmark = pytest.mark.django_db


def booked() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=housekeeping.TASK_PATH, status="READY"))


def schedule() -> str:
    out = StringIO()
    call_command("anchor_audit", "--schedule", stdout=out)
    return out.getvalue()


def test_booking_twice_books_one_run(queued: None, settings: Any) -> None:
    assert schedule().startswith("The task workers will anchor the chain every 300 s.\n")
    assert "(already booked)" in schedule()
    assert len(booked()) == 1


def test_a_worker_anchors_the_head_and_books_the_next_run(queued: None, settings: Any) -> None:
    trail.record(action="catalog.sync", outcome="success", reason="one")
    head = trail.record(action="catalog.sync", outcome="success", reason="two")
    schedule()
    assert [a.id for a in read_anchors()] == [head.id]  # the command anchors at once too
    head = trail.record(action="catalog.sync", outcome="success", reason="three")

    run_queue_once()

    assert [a.id for a in read_anchors()][-1] == head.id == AuditEvent.objects.latest("id").id
    (next_run,) = booked()
    wait = next_run.run_after - timezone.now()
    assert timedelta(seconds=290) < wait <= timedelta(seconds=300)


def test_a_failed_run_still_books_the_next(
    queued: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    trail.record(action="catalog.sync", outcome="success", reason="one")
    schedule()

    def broken() -> None:
        raise OSError("the anchor file's disk is full")

    monkeypatch.setattr(housekeeping, "anchor_head", broken)
    run_queue_once()

    assert DBTaskResult.objects.filter(task_path=housekeeping.TASK_PATH, status="FAILED").exists()
    assert len(booked()) == 1


def test_the_immediate_backend_books_nothing(immediate: None) -> None:
    assert "no periodic anchoring; run this from cron" in schedule()
    assert not DBTaskResult.objects.exists()


def test_the_run_closes_ended_refusal_windows_before_anchoring(
    queued: None, outsider: User
) -> None:
    # Three refusals in one window of the past (the refusals' clock only): the first is written
    # at once, the other two counted in the window, which has ended by the time the run comes.
    an_hour_ago = timezone.now() - timedelta(hours=1)
    with refusals_at(an_hour_ago):
        refuse(outsider, times=3)
    assert list(refused_counts()) == [1]
    schedule()

    run_queue_once()

    assert list(refused_counts()) == [1, 2]
    assert not RefusalWindow.objects.exists()
    assert read_anchors()[-1].id == AuditEvent.objects.latest("sequence").id


def refused_counts() -> list[int]:
    events = AuditEvent.objects.filter(action="access.refused").order_by("sequence")
    return [event.details["count"] for event in events]
