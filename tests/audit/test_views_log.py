"""The audit log page: newest first, its filters, paging by sequence, and the CSV export."""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus

import pytest
from django.urls import reverse
from django.utils import timezone

from sessions_app import trail
from sessions_app.models import EndUser
from sessions_app.tool_router import mcp_url
from tests.factories import SECRET_API_KEY, SECRET_MCP_URL, client_for, store_grant
from tests.helpers import csv_rows


@pytest.fixture
def some_events(db) -> None:
    alice = EndUser.objects.create(external_id="alice")
    trail.record(action="catalog.sync", outcome="success", reason="sync one")
    trail.record(action="toolkit.allow", outcome="success", details={"toolkit": "github"})
    trail.record(
        action="session.create",
        outcome="failure",
        end_user=alice,
        reason="rate limited",
        details={"toolkits": ["github", "slack"]},
    )
    trail.record(
        action="session.create", outcome="success", end_user=alice, details={"toolkits": ["slack"]}
    )


@pytest.mark.django_db
def test_the_log_shows_newest_first(auditor, some_events) -> None:
    response = client_for(auditor).get(reverse("audit:events"))
    # 5 is the auditor's own login, audited like every login.
    assert [e.sequence for e in response.context["events"]] == [5, 4, 3, 2, 1]
    assert response.context["events"][0].action == "auth.login"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "sequences"),
    [
        ({"action": "session.create"}, [4, 3]),
        ({"outcome": "failure"}, [3]),
        ({"end_user": "alice"}, [4, 3]),
        ({"toolkit": "github"}, [3, 2]),
        ({"toolkit": "slack", "outcome": "success"}, [4]),
        ({"actor": "nobody"}, []),
    ],
)
def test_the_log_filters_by_each_field(auditor, some_events, query, sequences) -> None:
    response = client_for(auditor).get(reverse("audit:events"), query)
    assert [e.sequence for e in response.context["events"]] == sequences


@pytest.mark.django_db
def test_the_log_filters_by_staff_user_and_date_range(auditor, support_user) -> None:
    trail.record(action="auth.login", outcome="success", actor=support_user)
    trail.record(action="auth.login", outcome="success", actor=auditor)
    client = client_for(auditor)
    response = client.get(reverse("audit:events"), {"actor": support_user.username})
    assert [e.actor_username for e in response.context["events"]] == [support_user.username]
    today = timezone.now().date()
    assert (
        len(
            client.get(reverse("audit:events"), {"date_from": today, "date_to": today}).context[
                "events"
            ]
        )
        == 3
    )
    yesterday = today - dt.timedelta(days=1)
    assert client.get(reverse("audit:events"), {"date_to": yesterday}).context["events"] == []


@pytest.mark.django_db
def test_a_bad_filter_gets_a_clear_message_and_no_rows(auditor, some_events) -> None:
    response = client_for(auditor).get(
        reverse("audit:events"), {"date_from": "2025-02-01", "date_to": "2025-01-01"}
    )
    assert response.status_code == HTTPStatus.OK
    assert b"The start date is after the end date." in response.content
    assert response.context["events"] == []
    response = client_for(auditor).get(reverse("audit:events"), {"outcome": "hacked"})
    assert b"Select a valid choice" in response.content


@pytest.mark.django_db
def test_the_log_pages_by_sequence_without_counting(auditor, django_assert_max_num_queries) -> None:
    for n in range(60):
        trail.record(action="catalog.sync", outcome="success", reason=f"e{n}")
    client = client_for(auditor)
    client.get(reverse("audit:events"))  # the first request fills the staff user's cache entry
    with django_assert_max_num_queries(8):
        first = client.get(reverse("audit:events"), {"action": "catalog.sync"})
    assert len(first.context["events"]) == 50 and first.context["older"] == 11
    assert b"before=11" in first.content
    second = client.get(reverse("audit:events"), {"action": "catalog.sync", "before": 11})
    assert [e.sequence for e in second.context["events"]] == list(range(10, 0, -1))
    assert second.context["older"] is None


@pytest.mark.django_db
def test_the_log_export_streams_the_filtered_events_without_secrets(auditor, settings) -> None:
    settings.COMPOSIO_API_KEY = SECRET_API_KEY
    alice = EndUser.objects.create(external_id="alice")
    session = store_grant("alice", ["github"])
    trail.record(
        action="mcp_url.reveal",
        outcome="success",
        end_user=alice,
        session=session,
        details={"fingerprint": mcp_url.fingerprint(SECRET_MCP_URL)},
        reason=f"revealed; key {SECRET_API_KEY} must not show",
    )
    trail.record(action="catalog.sync", outcome="success", reason='=HYPERLINK("x")')
    response = client_for(auditor).get(
        reverse("audit:events"), {"action": "mcp_url.reveal", "export": "csv"}
    )
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
    assert rows[0][:4] == ["sequence", "time_utc", "action", "outcome"]
    assert [r[2] for r in rows[1:]] == ["mcp_url.reveal"]
    body = str(rows)
    assert "SENTINEL" not in body and "mcp.example.test" not in body
    assert mcp_url.fingerprint(SECRET_MCP_URL) in body
    everything = csv_rows(client_for(auditor).get(reverse("audit:events"), {"export": "csv"}))
    assert '\'=HYPERLINK("x")' in [r[10] for r in everything[1:]]


@pytest.mark.django_db
@pytest.mark.parametrize("before", ["abc", "0", "-3", "1.5", "99999999999999999999999"])
def test_a_bad_page_position_gets_a_form_error_not_a_quiet_empty_list(
    auditor, some_events, before: str
) -> None:
    response = client_for(auditor).get(reverse("audit:events"), {"before": before})
    assert response.status_code == HTTPStatus.OK
    assert b"The page position (before=) must be an audit event number" in response.content
    assert b"No event matches." not in response.content
    assert response.context["form"].errors["before"]


@pytest.mark.django_db
def test_an_over_long_filter_is_refused_with_its_limit_never_cut(auditor) -> None:
    client = client_for(auditor)
    assert b"maxlength" not in client.get(reverse("audit:events")).content
    response = client.get(reverse("audit:events"), {"end_user": "x" * 300})
    assert b"at most 128 characters (it has 300)" in response.content
