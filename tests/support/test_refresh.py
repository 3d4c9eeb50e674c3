"""Refreshing a session from the support card: confirm, then the same service as the admin."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from sessions_app.models import AuditEvent, EndUser, ToolRouterSession
from sessions_app.tool_router.mcp_url import short_id
from tests.factories import HX, client_for, give_session, make_end_user


@pytest.fixture
def end_user(catalog, session_admin: User) -> EndUser:
    user = make_end_user("usr_refresh", "Rae Fresh")
    give_session(user, ["github", "gmail"], session_admin)
    return user


def _url(end_user: EndUser) -> str:
    return reverse("sessions_app:support_session_refresh", args=[end_user.public_id])


def test_a_refresh_replaces_the_session_and_updates_the_card_in_place(
    end_user: EndUser, session_admin: User, emulator
) -> None:
    old = end_user.sessions.get(status="active")
    creates = emulator.count("session.create")
    response = client_for(session_admin).post(_url(end_user), headers=HX)
    assert response.status_code == HTTPStatus.OK

    new = end_user.sessions.get(status="active")
    assert new.session_id != old.session_id
    old.refresh_from_db()
    assert old.status == ToolRouterSession.Status.SUPERSEDED
    assert emulator.count("session.create") == creates + 1
    assert AuditEvent.objects.filter(action="session.refresh", outcome="success").count() == 1

    html = response.content.decode()
    assert "<html" not in html
    assert new.session_id in html  # the card, re-rendered
    assert old.session_id in html  # now in the history
    assert 'id="messages" aria-live="polite" hx-swap-oob="true"' in html
    assert "usr_refresh" in html
    assert new.mcp_url not in html and old.mcp_url not in html
    trigger = json.loads(response["HX-Trigger"])
    assert f"enduser-changed-{end_user.public_id}" in trigger


def test_the_list_row_shows_the_new_session_after_a_refresh(
    end_user: EndUser, session_admin: User
) -> None:
    client = client_for(session_admin)
    client.post(_url(end_user), headers=HX)
    new = end_user.sessions.get(status="active")
    row = client.get(
        reverse("sessions_app:support_user_row", args=[end_user.public_id]), headers=HX
    )
    assert row.status_code == HTTPStatus.OK
    assert short_id(new.session_id) in row.content.decode()
    assert f"enduser-changed-{end_user.public_id} from:body" in row.content.decode()


def test_csrf_is_enforced_on_refresh(end_user: EndUser, session_admin: User, emulator) -> None:
    creates = emulator.count("session.create")
    response = client_for(session_admin, enforce_csrf_checks=True).post(_url(end_user), headers=HX)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert emulator.count("session.create") == creates
    assert end_user.sessions.count() == 1


def test_without_javascript_a_refresh_redirects_to_the_card_with_a_message(
    end_user: EndUser, session_admin: User
) -> None:
    client = client_for(session_admin)
    response = client.post(_url(end_user))
    card = reverse("sessions_app:support_user_card", args=[end_user.public_id])
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == card
    page = client.get(card).content.decode()
    assert "usr_refresh" in page and 'class="message message-success"' in page


def test_when_composio_fails_the_card_says_why_and_the_old_session_stays(
    end_user: EndUser, session_admin: User, emulator
) -> None:
    old = end_user.sessions.get(status="active")
    emulator.faults.enqueue(503, endpoint="session.create", times=5)
    response = client_for(session_admin).post(_url(end_user), headers=HX)
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "message-error" in html and "503" in html
    assert end_user.sessions.get(status="active") == old
