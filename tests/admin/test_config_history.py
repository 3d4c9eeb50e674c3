"""Composio's config history of a session on its admin page beside its audit events, and the
access report's finding for a session changed outside the console (a PATCH straight to Composio's
API that no audit event explains). Real HTTP against the emulator."""

from __future__ import annotations

from http import HTTPStatus

import httpx
import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, ToolRouterSession
from sessions_app.tool_router import config_history, sessions
from tests.factories import client_for
from tests.helpers import SESSION_URL

pytestmark = pytest.mark.django_db

ACCESS = "audit:access"


def change_url(session: ToolRouterSession) -> str:
    return reverse("admin:sessions_app_toolroutersession_change", args=[session.pk])


def patch_outside(emu_http: httpx.Client, session: ToolRouterSession, toolkits: list[str]) -> None:
    """Someone changes the session at Composio directly, with the API key: not through the
    console, so no audit event says so."""
    response = emu_http.patch(
        f"{SESSION_URL}/{session.session_id}", json={"toolkits": {"enable": toolkits}}
    )
    assert response.status_code == HTTPStatus.OK, response.text


def test_a_change_outside_the_console_is_a_finding(
    alices_session: ToolRouterSession,
    emu_http: httpx.Client,
    auditor_client: Client,
    catalog: Emulator,
) -> None:
    before = auditor_client.get(reverse(ACCESS)).content.decode()
    assert "Sessions changed outside the console" in before
    assert 'class="card flag" id="changed-outside"' not in before

    patch_outside(emu_http, alices_session, ["github", "gmail"])
    reads = catalog.count("session.config_history")
    page = auditor_client.get(change_url(alices_session))

    assert page.status_code == HTTPStatus.OK
    assert catalog.count("session.config_history") == reads + 1
    history = page.context["config_history"]
    assert [(r.version.version, r.explained) for r in history.rows] == [(2, False), (1, True)]
    assert history.rows[1].event.action == "session.create"
    html = page.content.decode()
    assert 'id="config-history-finding"' in html
    assert "1 version recorded by Composio that no audit event explains" in html
    assert "session.create" in html  # the audit events of the session, beside it

    alices_session.refresh_from_db()
    assert [v["version"] for v in alices_session.config_unexplained] == [2]
    assert alices_session.config_unexplained[0]["toolkits"] == ["github", "gmail"]
    stored_at = alices_session.config_checked_at
    assert stored_at is not None
    reads = catalog.count("session.config_history")
    auditor_client.get(change_url(alices_session))  # shared reading: Composio is not asked
    assert catalog.count("session.config_history") == reads
    cache.clear()
    auditor_client.get(change_url(alices_session))  # the same finding again: nothing rewritten
    assert catalog.count("session.config_history") == reads + 1
    alices_session.refresh_from_db()
    assert alices_session.config_checked_at == stored_at

    reads = catalog.count("session.config_history")
    report = auditor_client.get(reverse(ACCESS))
    assert catalog.count("session.config_history") == reads  # the report never asks Composio
    html = report.content.decode()
    assert 'class="card flag" id="changed-outside"' in html
    assert "usr_alice" in html and "v2" in html
    assert [row.session_pk for row in report.context["changed_outside"]] == [alices_session.pk]


def test_changes_through_the_console_are_explained(
    alices_session: ToolRouterSession,
    session_admin: User,
    auditor_client: Client,
) -> None:
    changed = sessions.tool_router_session_change_toolkits(
        session=alices_session, toolkits=["github", "gmail"], actor=session_admin
    )
    assert changed.ok, changed.message
    changed = sessions.tool_router_session_change_toolkits(
        session=alices_session, toolkits=["gmail"], actor=session_admin
    )
    assert changed.ok, changed.message

    page = auditor_client.get(change_url(alices_session))

    history = page.context["config_history"]
    assert [(r.version.version, r.explained) for r in history.rows] == [
        (3, True),
        (2, True),
        (1, True),
    ]
    assert {r.event.action for r in history.rows[:2]} == {"session.change_toolkits"}
    assert 'id="config-history-clean"' in page.content.decode()
    alices_session.refresh_from_db()
    assert alices_session.config_unexplained == []
    assert alices_session.config_checked_at is None  # nothing to store: nothing written
    report = auditor_client.get(reverse(ACCESS))
    assert report.context["changed_outside"] == []


def test_a_refreshed_session_is_explained_by_its_refresh(
    alices_session: ToolRouterSession, alice: EndUser, session_admin: User, auditor_client: Client
) -> None:
    refreshed = sessions.tool_router_session_refresh(
        end_user=alice, toolkits=["gmail"], actor=session_admin
    )
    assert refreshed.ok and refreshed.session is not None

    history = auditor_client.get(change_url(refreshed.session)).context["config_history"]

    assert [(r.version.version, r.event.action) for r in history.rows] == [(1, "session.refresh")]
    # The superseded one is no longer at Composio: its page says so and shows its events.
    old = auditor_client.get(change_url(alices_session)).context["config_history"]
    assert old.rows == [] and "no longer active" in old.error
    assert any(e.action == "session.create" for e in old.events)


def test_a_finding_is_cleared_only_by_a_later_reading_that_explains_it(
    alices_session: ToolRouterSession, emu_http: httpx.Client
) -> None:
    patch_outside(emu_http, alices_session, ["gmail"])
    history = config_history.session_config_history(alices_session, request=None)
    assert [r.version.version for r in history.unexplained] == [2]
    # An audit event recording version 2 (as the console writes for its own change) explains it.
    event = AuditEvent.objects.filter(session=alices_session).first()
    assert event is not None
    rows = config_history.match(
        [r.version for r in history.rows],
        [
            event,
            AuditEvent(
                pk=10**9,
                action="session.change_toolkits",
                outcome=AuditEvent.Outcome.SUCCESS,
                details={"config_version": 2, "toolkits": ["gmail"]},
            ),
        ],
    )
    assert all(r.explained for r in rows)


def test_composio_failing_shows_why_and_keeps_the_last_finding(
    alices_session: ToolRouterSession,
    emu_http: httpx.Client,
    auditor_client: Client,
    catalog: Emulator,
) -> None:
    patch_outside(emu_http, alices_session, ["gmail"])
    auditor_client.get(change_url(alices_session))
    cache.clear()  # the last reading is no longer shared: the page asks Composio again
    catalog.faults.enqueue(503, endpoint="session.config_history", times=10)

    page = auditor_client.get(change_url(alices_session))

    history = page.context["config_history"]
    assert history.rows == [] and history.error
    assert alices_session.session_id not in history.error
    assert "could not be read" in page.content.decode()
    alices_session.refresh_from_db()
    assert [v["version"] for v in alices_session.config_unexplained] == [2]


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (None, HTTPStatus.FOUND),  # the admin's login page
        ("outsider", HTTPStatus.FORBIDDEN),
        ("auditor", HTTPStatus.OK),
        ("support_user", HTTPStatus.OK),
        ("session_admin", HTTPStatus.OK),
    ],
)
def test_who_sees_the_config_history(
    alices_session: ToolRouterSession,
    catalog: Emulator,
    request: pytest.FixtureRequest,
    who: str | None,
    expected: int,
) -> None:
    user = request.getfixturevalue(who) if who else None
    reads = catalog.count("session.config_history")

    response = client_for(user).get(change_url(alices_session))

    assert response.status_code == expected
    shown = expected == HTTPStatus.OK
    assert catalog.count("session.config_history") == reads + (1 if shown else 0)
    if shown:
        assert 'id="config-history"' in response.content.decode()
