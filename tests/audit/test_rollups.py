"""The access report's daily rollup equals a recomputation from the sessions after every kind
of session change the services make, and after `rebuild_rollups`."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sessions_app.audit import reports
from sessions_app.composio.emulator import Emulator
from sessions_app.models import (
    EndUser,
    SessionToolkit,
    Toolkit,
    ToolkitDailyRollup,
    ToolRouterSession,
)
from sessions_app.tool_router import rollups, sessions
from tests.factories import give_session, make_end_user, store_grant


def _assert_equal_to_a_recomputation() -> None:
    assert rollups.stored() == rollups.recomputed()
    call_command("rebuild_rollups", "--check", stdout=StringIO())
    # The report's counts, from the rollup, equal a count of the active sessions' links.
    raw = Counter(
        SessionToolkit.objects.filter(session__status="active").values_list("toolkit_id", flat=True)
    )
    assert reports.active_counts() == dict(raw)


def _today() -> tuple[int, int]:
    [day] = reports.grants_and_revocations(first_day=_date(), last_day=_date())
    return day.grants, day.revocations


def _date() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


@pytest.mark.django_db
def test_the_rollup_follows_create_refresh_rescope_and_delete(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    bob = make_end_user("usr_bob")
    give_session(alice, ["github", "slack"], session_admin)
    _assert_equal_to_a_recomputation()
    assert _today() == (2, 0)

    # A refresh keeping github and slack, adding gmail: one grant, nothing revoked.
    result = sessions.tool_router_session_refresh(
        end_user=alice, toolkits=["github", "slack", "gmail"], actor=session_admin
    )
    assert result.ok, result.message
    _assert_equal_to_a_recomputation()
    assert _today() == (3, 0)

    # A refresh dropping slack: one revocation.
    result = sessions.tool_router_session_refresh(
        end_user=alice, toolkits=["github", "gmail"], actor=session_admin
    )
    assert result.ok, result.message
    _assert_equal_to_a_recomputation()
    assert _today() == (3, 1)

    # Re-scoped in place: slack back, gmail out.
    active = ToolRouterSession.objects.get(end_user=alice, status="active")
    result = sessions.tool_router_session_change_toolkits(
        session=active, toolkits=["github", "slack"], actor=session_admin
    )
    assert result.ok, result.message
    _assert_equal_to_a_recomputation()

    give_session(bob, ["github"], session_admin)
    _assert_equal_to_a_recomputation()

    # Deleted: what it held is revoked.
    active = ToolRouterSession.objects.get(end_user=alice, status="active")
    result = sessions.tool_router_session_delete(session=active, actor=session_admin)
    assert result.ok, result.message
    _assert_equal_to_a_recomputation()

    stored = rollups.stored()
    ToolkitDailyRollup.objects.all().delete()
    call_command("rebuild_rollups", stdout=StringIO())
    assert rollups.stored() == stored


@pytest.mark.django_db
def test_rebuild_rollups_recomputes_rows_written_without_the_services() -> None:
    old = timezone.now() - dt.timedelta(days=40)
    store_grant("u_1", ["github", "slack"], created_at=old)
    store_grant("u_2", ["github"])
    ToolkitDailyRollup.objects.all().delete()  # as if written by hand, the rollup left behind
    with pytest.raises(CommandError):
        call_command("rebuild_rollups", "--check", stdout=StringIO())
    call_command("rebuild_rollups", stdout=StringIO())
    _assert_equal_to_a_recomputation()
    github = Toolkit.objects.get(slug="github")
    assert ToolkitDailyRollup.objects.get(day=_date(), toolkit=github).grants == 1
    series = reports.grants_and_revocations(first_day=old.date(), last_day=_date())
    assert sum(d.grants for d in series) == 3


@pytest.mark.django_db
def test_the_chart_is_one_query_whatever_the_range() -> None:
    store_grant("u_1", ["github"])
    rollups.rebuild()
    for days in (1, 30, 365):
        with CaptureQueriesContext(connection) as queries:
            reports.grants_and_revocations(
                first_day=_date() - dt.timedelta(days=days - 1), last_day=_date()
            )
        assert len(queries) == 1


@pytest.mark.django_db
def test_the_counts_with_a_date_range_are_one_query() -> None:
    old = timezone.now() - dt.timedelta(days=40)
    store_grant("u_1", ["github", "slack"], created_at=old)
    store_grant("u_2", ["github"])
    with CaptureQueriesContext(connection) as queries:
        every, dated = reports.active_counts_with_range(_date() - dt.timedelta(days=7), None)
    assert len(queries) == 1
    assert every == reports.active_counts()
    assert dated == reports.active_counts(_date() - dt.timedelta(days=7), None)
    assert sorted(Toolkit.objects.get(pk=pk).slug for pk in dated) == ["github"]
