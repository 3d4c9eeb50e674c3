"""The attention sweep: asks the emulator (over the real SDK) about each user with an active
session, stores why they need attention (an expired account, repeated failed executions, a stale
session) and clears it once fixed; continues where a killed or budget-stopped run left off; and
runs as a self-renewing task once `sweep_attention --schedule` booked it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from sessions_app import housekeeping
from sessions_app.composio.emulator import Emulator
from sessions_app.models import AttentionState, EndUser, RateBudget, ToolRouterSession
from sessions_app.tool_router import attention, drift
from sessions_app.tool_router import executions as tool_runs
from tests.factories import give_session, make_end_user
from tests.helpers import run_command
from tests.task_queue import run_queue_once

pytestmark = pytest.mark.django_db


def sweep(*args: str) -> tuple[int, str]:
    """Run `sweep_attention`; (exit code, output)."""
    return run_command("sweep_attention", *args)


def reasons(external_id: str) -> list[str]:
    state = AttentionState.objects.get(end_user__external_id=external_id)
    return [r["kind"] for r in state.reasons]


@pytest.fixture
def troubled(catalog: Emulator, session_admin: User, fast_bulk: None) -> dict[str, Any]:
    """Four github users: usr_exp's account expired, usr_fail's agent failed three times
    (missing arguments), usr_stale's session is stale, usr_fine is fine."""
    made = {}
    for name in ("usr_exp", "usr_fail", "usr_stale", "usr_fine"):
        made[name] = give_session(make_end_user(name), ["github"], session_admin)
    for name in ("usr_fail", "usr_stale", "usr_fine"):
        catalog.set_connection(made[name].session_id, "github", "ACTIVE")
    catalog.set_connection(
        made["usr_exp"].session_id, "github", "EXPIRED", "The provider's token expired"
    )
    for _ in range(3):
        outcome = tool_runs.tool_router_session_execute(
            session=made["usr_fail"], tool_slug="GITHUB_CREATE_AN_ISSUE", arguments={}
        )
        assert outcome.ran and outcome.result_type != "completed"
    drift.mark_stale(made["usr_stale"], via="test")
    return made


def test_the_sweep_finds_each_problem_in_words_and_clears_it_once_fixed(
    troubled: dict[str, ToolRouterSession], catalog: Emulator
) -> None:
    lists, logs = catalog.count("connected_accounts.list"), catalog.count("logs.tool_execution")

    code, out = sweep()

    assert code == 0, out
    assert "Checked 4 of 4 users: 3 need attention, 1 fine" in out
    assert "3 users need attention in all." in out
    assert catalog.count("connected_accounts.list") - lists == 4
    assert catalog.count("logs.tool_execution") - logs == 4
    assert reasons("usr_exp") == [attention.ACCOUNT]
    assert reasons("usr_fail") == [attention.EXECUTIONS]
    assert reasons("usr_stale") == [attention.STALE]
    assert reasons("usr_fine") == []
    texts = {
        s.end_user.external_id: s.reasons[0]["text"]
        for s in attention.needing_attention().select_related("end_user")
    }
    assert texts == {
        "usr_exp": "github: the connected account is expired (The provider's token expired).",
        "usr_fail": "3 tool executions failed in the last 24 hours.",
        "usr_stale": "Composio no longer knows the session (stale): its MCP URL does not work.",
    }
    # The most recent problem first: the stale mark came last.
    order = [
        s.end_user.external_id for s in attention.needing_attention().select_related("end_user")
    ]
    assert order[0] == "usr_stale"
    assert attention.attention_count() == 3

    # Fixed: the account reconnected, the session known again, the failures under the bar.
    catalog.set_connection(troubled["usr_exp"].session_id, "github", "ACTIVE")
    drift.mark_known(troubled["usr_stale"], via="test")
    code, out = sweep()
    assert code == 0 and "1 need attention, 3 fine" in out
    assert [
        s.end_user.external_id for s in attention.needing_attention().select_related("end_user")
    ] == ["usr_fail"]
    assert reasons("usr_exp") == [] and reasons("usr_stale") == []

    # A user whose session ended has nothing to fix any more.
    ToolRouterSession.objects.filter(pk=troubled["usr_fail"].pk).update(
        status=ToolRouterSession.Status.DELETED
    )
    code, out = sweep()
    assert "1 without an active session any more: cleared." in out
    assert attention.attention_count() == 0


class Killed(BaseException):
    """The worker was killed mid-run (no `except Exception` stops it)."""


def test_a_killed_sweep_is_continued_by_the_next_where_it_stopped(
    troubled: dict[str, ToolRouterSession], catalog: Emulator
) -> None:
    real = attention.check_end_user
    calls = {"n": 0}

    def dies_on_the_third(session: ToolRouterSession) -> attention.Finding:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Killed
        return real(session)

    with mock.patch.object(attention, "check_end_user", dies_on_the_third), pytest.raises(Killed):
        attention.attention_sweep()
    assert AttentionState.objects.count() == 2  # usr_exp, usr_fail: stored before the kill

    report = attention.attention_sweep(limit=2)
    # The two never checked come first (in id order), not the two just checked.
    assert [i.end_user.external_id for i in report.items] == ["usr_stale", "usr_fine"]
    assert attention.attention_count() == 3


def test_a_spent_budget_stops_the_sweep_and_the_next_run_goes_on_from_there(
    troubled: dict[str, ToolRouterSession], catalog: Emulator, settings: Any
) -> None:
    RateBudget.objects.all().delete()
    settings.BULK_RATE_PER_MINUTE = 60  # one token a second...
    settings.BULK_RATE_BURST = 4  # ...and room for two users (two reads each) at once
    settings.ATTENTION_SWEEP_MAX_WAIT_SECONDS = 0
    lists = catalog.count("connected_accounts.list")

    code, out = sweep()

    assert code == 3, out
    assert "Checked 2 of 4 users" in out
    assert "Stopped early: Composio's shared request budget is spent; 2 not reached." in out
    assert catalog.count("connected_accounts.list") - lists == 2  # nothing asked past the budget
    assert RateBudget.objects.get().tokens < 1  # the sweep paid from the shared bucket
    assert set(AttentionState.objects.values_list("end_user__external_id", flat=True)) == {
        "usr_exp",
        "usr_fail",
    }

    settings.BULK_RATE_PER_MINUTE = 600_000
    code, out = sweep("--limit", "2")  # the next run's first two: the two not reached
    assert code == 0 and "Checked 2 of 2 users" in out
    assert "usr_stale" in out and "usr_fine" in out and "usr_exp" not in out


def test_a_fault_keeps_the_last_known_state(
    troubled: dict[str, ToolRouterSession], catalog: Emulator, settings: Any
) -> None:
    sweep()
    before = AttentionState.objects.get(end_user__external_id="usr_exp")
    settings.COMPOSIO_SAFE_RETRIES = 0
    catalog.faults.enqueue(503, endpoint="connected_accounts.list", times=10)
    catalog.set_connection(troubled["usr_exp"].session_id, "github", "ACTIVE")

    code, out = sweep("--user", "usr_exp")

    assert code == 3 and "UNCHECKED  usr_exp" in out and "Last known state kept." in out
    after = AttentionState.objects.get(end_user__external_id="usr_exp")
    assert (after.reasons, after.checked_at) == (before.reasons, before.checked_at)


def test_schedule_books_once_and_a_worker_sweeps_and_books_the_next(
    queued: None, troubled: dict[str, ToolRouterSession]
) -> None:
    assert sweep("--schedule")[1] == "The task workers will check up to 500 users every 900 s.\n"
    assert "(already booked)" in sweep("--schedule")[1]

    run_queue_once()

    assert attention.attention_count() == 3
    (next_run,) = DBTaskResult.objects.filter(
        task_path=housekeeping.ATTENTION_TASK_PATH, status="READY"
    )
    wait = next_run.run_after - timezone.now()
    assert timedelta(seconds=890) < wait <= timedelta(seconds=900)


def test_the_command_names_an_unknown_user(db: None) -> None:
    code, out = sweep("--user", "nobody")
    assert code == 2 and "No end user 'nobody'." in out
    assert not EndUser.objects.exists()
