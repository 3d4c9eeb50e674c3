"""Refused access cannot flood the audit trail: the `access.refused` events of one staff user and
operation are coalesced per minute (`sessions_app.refusals`), the count kept.

The first refusal of a window is written at once (count 1); the rest only count in the window
until it is closed (by the next refusal in a later window, or `flush_refusals`), which appends one
summary event (count N - 1, coalesced). No event is ever updated, and the chain stays intact.
Every refused request still gets the refusal page. The races run on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from sessions_app import access, refusals
from sessions_app.models import AuditEvent, RefusalWindow
from tests.factories import client_for
from tests.helpers import (
    ON_POSTGRESQL,
    assert_chain_intact,
    audit_events,
    refusals_at,
    refusals_counted,
    refuse,
    run_together,
)

SUPPORT_PAGE = reverse("sessions_app:support_lookup")
AUDIT_PAGE = reverse("audit:events")
MINUTE = dt.timedelta(seconds=60)
# A moment well inside a window, so a test's own few seconds never cross into the next one.
T0 = dt.datetime(2026, 3, 2, 10, 15, 5, tzinfo=dt.UTC)


def assert_refused(response: object, role: str = "Support") -> None:
    """The console's refusal page, naming the role that would open the page."""
    assert response.status_code == HTTPStatus.FORBIDDEN  # type: ignore[attr-defined]
    html = response.content.decode()  # type: ignore[attr-defined]
    assert "<h1>Refused</h1>" in html and f"This needs the {role}" in html


# --- Through the pages --------------------------------------------------------------------------


@pytest.mark.django_db
def test_400_refused_requests_write_at_most_25_events_and_count_all_400(outsider: User) -> None:
    client = client_for(outsider)

    for _ in range(400):
        assert_refused(client.get(SUPPORT_PAGE))

    assert len(audit_events("access.refused")) <= 25
    call_command("flush_refusals", "--all", stdout=io.StringIO())
    events = audit_events("access.refused")
    assert len(events) <= 25
    assert refusals_counted() == {(outsider.username, "support_lookup"): 400}
    assert not RefusalWindow.objects.exists()
    assert_chain_intact()


@pytest.mark.django_db
def test_the_first_refusal_is_in_the_trail_at_once(outsider: User) -> None:
    response = client_for(outsider).get(SUPPORT_PAGE)

    assert_refused(response)
    event = AuditEvent.objects.get(action="access.refused")
    assert (event.outcome, event.actor_username) == ("refused", outsider.username)
    assert event.reason.startswith(f"GET {SUPPORT_PAGE} needs ")
    assert event.details == {
        "operation": "support_lookup",
        "missing": event.details["missing"],
        "target": "",
        "method": "GET",
        "path": SUPPORT_PAGE,
        "count": 1,
    }
    assert event.details["missing"] and set(event.details["missing"]) <= set(access.SUPPORT_PERMS)


@pytest.mark.django_db
def test_every_refused_request_still_gets_the_refusal_page(outsider: User) -> None:
    client = client_for(outsider)
    with refusals_at(T0):
        first = client.get(SUPPORT_PAGE)
        later = [client.get(SUPPORT_PAGE) for _ in range(3)]

    for response in [first, *later]:
        assert_refused(response)
    assert len(audit_events("access.refused")) == 1
    assert RefusalWindow.objects.get().count == 4


@pytest.mark.django_db
def test_other_users_and_operations_are_not_merged(outsider: User, support_user: User) -> None:
    outsider_client, support_client = client_for(outsider), client_for(support_user)
    with refusals_at(T0):
        for _ in range(3):
            assert_refused(outsider_client.get(SUPPORT_PAGE))
            assert_refused(outsider_client.get(AUDIT_PAGE), "Auditor")
            assert_refused(support_client.get(AUDIT_PAGE), "Auditor")

    # One event written at once per (user, operation), the rest waiting in its window.
    assert refusals_counted() == {
        (outsider.username, "support_lookup"): 1,
        (outsider.username, "event_list"): 1,
        (support_user.username, "event_list"): 1,
    }
    assert sorted(RefusalWindow.objects.values_list("actor_username", "operation", "count")) == [
        (outsider.username, "event_list", 3),
        (outsider.username, "support_lookup", 3),
        (support_user.username, "event_list", 3),
    ]
    refusals.close_windows()
    assert refusals_counted() == {
        (outsider.username, "support_lookup"): 3,
        (outsider.username, "event_list"): 3,
        (support_user.username, "event_list"): 3,
    }
    summaries = AuditEvent.objects.filter(action="access.refused", details__coalesced=True)
    assert sorted(e.actor_username for e in summaries) == sorted(
        [outsider.username, outsider.username, support_user.username]
    )
    assert all(e.actor_id is not None for e in summaries)
    assert_chain_intact()


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_login_and_not_audited() -> None:
    for _ in range(5):
        response = Client().get(SUPPORT_PAGE)
        assert response.status_code == HTTPStatus.FOUND
        assert response["Location"].startswith(reverse("login"))
    assert not AuditEvent.objects.filter(action="access.refused").exists()
    assert not RefusalWindow.objects.exists()


# --- Windows ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_next_refusal_in_a_later_window_closes_the_earlier_one(outsider: User) -> None:
    with refusals_at(T0):
        refuse(outsider, times=4)
    with refusals_at(T0 + MINUTE):
        refuse(outsider)

    events = audit_events("access.refused")
    assert [(e.details["count"], e.details.get("coalesced", False)) for e in events] == [
        (1, False),  # the first of 10:15, at once
        (3, True),  # the rest of 10:15, when 10:16 began
        (1, False),  # the first of 10:16
    ]
    summary = events[1]
    assert summary.details == {
        "operation": "probe",
        "missing": [],
        "target": "",
        "method": "",
        "path": "",
        "count": 3,
        "window": "2026-03-02T10:15:00+00:00",
        "coalesced": True,
    }
    assert summary.actor == outsider and summary.outcome == "refused"
    assert summary.reason == (
        "3 more refusals of probe in the 60 s from 2026-03-02 10:15:00 UTC (coalesced); "
        "the last: probe needs x."
    )
    assert summary.request_id == "" and summary.ip_address is None
    assert list(RefusalWindow.objects.values_list("window_start", "count")) == [
        (T0.replace(second=0) + MINUTE, 1)
    ]
    assert_chain_intact()


@pytest.mark.django_db
def test_a_later_window_of_anyone_closes_the_ended_windows(
    outsider: User, support_user: User
) -> None:
    with refusals_at(T0):
        refuse(outsider, times=2)
    with refusals_at(T0 + MINUTE):
        refuse(support_user, "other")

    assert refusals_counted() == {
        (outsider.username, "probe"): 2,
        (support_user.username, "other"): 1,
    }
    assert list(RefusalWindow.objects.values_list("actor_username", flat=True)) == [
        support_user.username
    ]


@pytest.mark.django_db
def test_a_window_with_one_refusal_closes_without_a_summary(outsider: User) -> None:
    with refusals_at(T0):
        refuse(outsider)

    assert refusals.flush(now=T0 + MINUTE) == 0
    assert [e.details["count"] for e in audit_events("access.refused")] == [1]
    assert not RefusalWindow.objects.exists()


@pytest.mark.django_db
def test_the_flush_closes_only_the_windows_that_ended(outsider: User) -> None:
    with refusals_at(T0):
        refuse(outsider, times=5)

    assert refusals.flush(now=T0 + dt.timedelta(seconds=50)) == 0
    assert refusals_counted() == {(outsider.username, "probe"): 1}
    assert refusals.flush(now=T0 + MINUTE) == 1
    assert refusals_counted() == {(outsider.username, "probe"): 5}
    assert refusals.flush(now=T0 + 2 * MINUTE) == 0  # nothing twice
    assert refusals_counted() == {(outsider.username, "probe"): 5}
    assert_chain_intact()


@pytest.mark.django_db
def test_flush_refusals_command_closes_the_ended_windows(outsider: User) -> None:
    with refusals_at(T0):
        refuse(outsider, times=3)
    out = io.StringIO()

    call_command("flush_refusals", stdout=out)  # now is long after T0

    assert out.getvalue() == "Wrote 1 summary access.refused event(s).\n"
    assert refusals_counted() == {(outsider.username, "probe"): 3}
    assert not RefusalWindow.objects.exists()


@pytest.mark.django_db
def test_flush_refusals_all_closes_the_open_windows_too(outsider: User) -> None:
    with refusals_at(T0):
        refuse(outsider, times=3)
        call_command("flush_refusals", stdout=io.StringIO())
        assert refusals_counted() == {(outsider.username, "probe"): 1}  # the window is open
        out = io.StringIO()

        call_command("flush_refusals", "--all", stdout=out)

        assert out.getvalue() == "Wrote 1 summary access.refused event(s).\n"
        assert refusals_counted() == {(outsider.username, "probe"): 3}
        # A refusal after that, in the same minute, opens the window anew: written at once.
        refuse(outsider)
        assert refusals_counted() == {(outsider.username, "probe"): 4}


@pytest.mark.django_db
def test_no_event_is_ever_updated(outsider: User) -> None:
    with refusals_at(T0):
        refuse(outsider, times=3)
    first = AuditEvent.objects.get(action="access.refused")
    with refusals_at(T0 + MINUTE):
        refusals.flush()

    again = AuditEvent.objects.get(pk=first.pk)
    assert (again.details, again.row_hash, again.sequence) == (
        first.details,
        first.row_hash,
        first.sequence,
    )
    assert_chain_intact()


@pytest.mark.django_db
def test_a_summary_survives_the_user_being_deleted(outsider: User) -> None:
    with refusals_at(T0):
        refuse(outsider, times=2)
    username, pk = outsider.username, outsider.pk
    outsider.delete()

    refusals.close_windows()

    summary = AuditEvent.objects.get(action="access.refused", details__coalesced=True)
    assert (summary.actor_id, summary.actor_username, summary.details["count"]) == (
        pk,
        username,
        1,
    )
    assert_chain_intact()


@pytest.mark.django_db
def test_coalescing_can_be_switched_off(outsider: User, settings) -> None:
    settings.REFUSAL_COALESCE_SECONDS = 0
    refuse(outsider, times=3)

    assert [e.details["count"] for e in audit_events("access.refused")] == [1, 1, 1]
    assert not RefusalWindow.objects.exists()
    assert refusals.flush() == 0


@pytest.mark.django_db
def test_the_audit_log_shows_the_count_of_a_summary(outsider: User, auditor_client: Client) -> None:
    with refusals_at(T0):
        refuse(outsider, times=8)
    refusals.close_windows()

    html = auditor_client.get(AUDIT_PAGE).content.decode()

    assert "&times;7</span>" in html
    assert "7 more refusals of probe in the 60 s from 2026-03-02 10:15:00 UTC" in html


def test_windows_are_aligned_to_the_minute() -> None:
    assert refusals.window_of(T0, 60) == dt.datetime(2026, 3, 2, 10, 15, tzinfo=dt.UTC)
    assert refusals.window_of(T0.replace(second=0), 60) == T0.replace(second=0)
    assert refusals.window_of(T0.replace(second=59, microsecond=999999), 60) == T0.replace(second=0)
    eastern = dt.timezone(dt.timedelta(hours=-5))
    assert refusals.window_of(T0.astimezone(eastern), 60) == T0.replace(second=0)


# --- PostgreSQL: refusals at once ---------------------------------------------------------------

THREADS = 24
EACH = 10


class TestAtOnceOnPostgreSQL:
    pytestmark = ON_POSTGRESQL

    def test_24_threads_of_refusals_lose_no_count(self, outsider: User, support_user: User) -> None:
        calls = [
            lambda n=n: refuse(outsider if n % 2 else support_user, f"op{n % 3}", times=EACH)
            for n in range(THREADS)
        ]
        results = run_together(*calls)

        assert results == [None] * THREADS, results
        refusals.close_windows()
        expected: Counter[tuple[str, str]] = Counter()
        for n in range(THREADS):
            user = outsider if n % 2 else support_user
            expected[(user.username, f"op{n % 3}")] += EACH
        assert refusals_counted() == expected
        # One first event and one summary per (user, operation, minute): 6 pairs, and a race
        # across a minute's end may add a window each.
        assert len(audit_events("access.refused")) <= 2 * 2 * len(expected)
        assert not RefusalWindow.objects.exists()
        assert_chain_intact()

    def test_24_refused_requests_at_once_lose_no_count(self, outsider: User) -> None:
        clients = [client_for(outsider) for _ in range(THREADS)]

        def requests(client: Client) -> list[int]:
            return [client.get(SUPPORT_PAGE).status_code for _ in range(5)]

        results = run_together(*[lambda c=c: requests(c) for c in clients])

        assert results == [[HTTPStatus.FORBIDDEN] * 5] * THREADS, results
        call_command("flush_refusals", "--all", stdout=io.StringIO())
        assert refusals_counted() == {(outsider.username, "support_lookup"): THREADS * 5}
        assert len(audit_events("access.refused")) <= 25
        assert_chain_intact()

    def test_flushing_while_refusals_arrive_loses_no_count(self, outsider: User) -> None:
        def refusing() -> None:
            refuse(outsider, times=EACH)

        def flushing() -> None:
            for _ in range(EACH):
                refusals.close_windows()

        results = run_together(*[refusing] * (THREADS - 4), *[flushing] * 4)

        assert results == [None] * THREADS, results
        refusals.close_windows()
        assert refusals_counted() == {(outsider.username, "probe"): (THREADS - 4) * EACH}
        assert not RefusalWindow.objects.exists()
        assert_chain_intact()
