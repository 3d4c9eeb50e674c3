"""The support card's timeline: the user's audit events, newest first, with who and when, for
Support and Session admin, in a fixed number of queries; the audit log link for auditors."""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sessions_app import trail
from sessions_app.models import AuditEvent, EndUser
from sessions_app.tool_router import timeline
from tests.factories import client_for, make_staff_with

pytestmark = pytest.mark.django_db


def card_url(end_user: EndUser) -> str:
    return reverse("sessions_app:support_user_card", args=[end_user.public_id])


def timeline_url(end_user: EndUser, before: int | None = None) -> str:
    url = reverse("sessions_app:support_user_timeline", args=[end_user.public_id])
    return f"{url}?before={before}" if before else url


def events_about(end_user: EndUser, actor: User, count: int, action: str = "mcp_url.reveal"):
    for _ in range(count):
        trail.record(action=action, outcome="success", actor=actor, end_user=end_user)


def labels(html: str) -> list[str]:
    return re.findall(r'<li class="timeline-event[^"]*">.*?<strong>([^<]+)</strong>', html, re.S)


@pytest.fixture(params=["support", "session admin"])
def staff(request: pytest.FixtureRequest, support_user: User, session_admin: User) -> User:
    return support_user if request.param == "support" else session_admin


def test_the_card_shows_the_users_events_newest_first_with_who_and_when(
    alice: EndUser, end_users: list[EndUser], staff: User, session_admin: User
) -> None:
    trail.record(action="session.create", outcome="success", actor=session_admin, end_user=alice)
    trail.record(action="mcp_url.reveal", outcome="success", actor=staff, end_user=alice)
    trail.record(action="connect_link.create", outcome="success", actor=staff, end_user=alice)
    trail.record(action="account.disable", outcome="failure", actor=session_admin, end_user=alice)
    trail.record(action="session.delete", outcome="success", actor=staff, end_user=end_users[0])

    html = client_for(staff).get(card_url(alice)).content.decode()

    assert labels(html) == [
        "Account disabled",
        "Reconnect link sent",
        "MCP URL revealed",
        "Session created",
    ]
    assert f'<span class="timeline-actor">{session_admin.username}</span>' in html
    assert 'badge-failed">failure' in html
    assert "<time datetime=" in html
    assert "timeline-audit-link" not in html  # neither role reads the audit log


def test_the_timeline_costs_the_same_queries_whatever_the_events(
    alice: EndUser, support_user: User
) -> None:
    client = client_for(support_user)
    client.get(card_url(alice))  # warm: session, permissions

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(card_url(alice)).status_code == HTTPStatus.OK
        return len(captured)

    events_about(alice, support_user, 1)
    one = queries()
    events_about(alice, support_user, 40)
    many = queries()

    assert many == one
    with CaptureQueriesContext(connection) as captured:
        page = timeline.end_user_timeline(end_user=alice)
    assert len(captured) == 1 and len(page.entries) == timeline.TIMELINE_LIMIT


def test_older_events_page_by_sequence_as_fragment_and_full_page(
    alice: EndUser, support_user: User
) -> None:
    events_about(alice, support_user, 25)
    client = client_for(support_user)
    first = timeline.end_user_timeline(end_user=alice)
    assert first.older_than is not None

    fragment = client.get(timeline_url(alice, first.older_than), HTTP_HX_REQUEST="true")
    page = client.get(timeline_url(alice, first.older_than))

    assert len(labels(fragment.content.decode())) == 5
    assert "<html" not in fragment.content.decode()
    assert "<html" in page.content.decode() and 'id="user-card"' in page.content.decode()
    assert len(labels(page.content.decode())) == 5
    assert "Newest" in page.content.decode()


def test_staff_who_read_the_audit_log_get_a_link_to_it_filtered_to_the_user(
    alice: EndUser, support_user: User
) -> None:
    both = make_staff_with(
        "sup_and_aud",
        [
            "sessions_app.view_enduser",
            "sessions_app.view_toolroutersession",
            "sessions_app.view_toolkit",
            "sessions_app.reveal_mcp_url",
            "sessions_app.view_auditevent",
        ],
    )
    events_about(alice, support_user, 1)

    html = client_for(both).get(card_url(alice)).content.decode()

    link = f'href="{reverse("audit:events")}?end_user={alice.external_id}"'
    assert link in html
    audit_page = client_for(both).get(f"{reverse('audit:events')}?end_user={alice.external_id}")
    assert audit_page.status_code == HTTPStatus.OK
    assert "mcp_url.reveal" in audit_page.content.decode()


@pytest.mark.parametrize("who", ["auditor", "outsider"])
def test_other_roles_are_refused(alice: EndUser, who: str, auditor: User, outsider: User) -> None:
    client = client_for(auditor if who == "auditor" else outsider)
    assert client.get(timeline_url(alice)).status_code == HTTPStatus.FORBIDDEN
    assert client.get(card_url(alice)).status_code == HTTPStatus.FORBIDDEN
    assert AuditEvent.objects.filter(action="access.refused").exists()


def test_anonymous_is_sent_to_log_in(alice: EndUser) -> None:
    response = Client().get(timeline_url(alice))
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/login/")
