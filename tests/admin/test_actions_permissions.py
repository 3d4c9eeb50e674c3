"""Who sees and may run the end-user admin's session actions; the refusals are audited."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, ToolRouterSession
from tests.factories import ENDUSER_CHANGELIST, admin_action_confirmed

pytestmark = pytest.mark.django_db


def url() -> str:
    return reverse(ENDUSER_CHANGELIST)


NEEDS = {
    "create_sessions": "sessions_app.create_session",
    "refresh_sessions": "sessions_app.refresh_session",
    "change_session_toolkits": "sessions_app.change_session_toolkits",
    "delete_sessions": "sessions_app.delete_session",
}


@pytest.mark.parametrize("action", sorted(NEEDS))
def test_actions_are_hidden_from_support_and_refused_if_posted(
    client: Client, support_user: User, catalog: Emulator, end_users: list[EndUser], action: str
) -> None:
    client.force_login(support_user)

    page = client.get(url())
    assert page.status_code == HTTPStatus.OK
    assert f'value="{action}"' not in page.content.decode()

    response = admin_action_confirmed(client, action, end_users[:1], ["github"])

    # The console's refusal page (not a redirect with a message), naming the action and the role.
    assert response.status_code == HTTPStatus.FORBIDDEN
    html = response.content.decode()
    assert "<h1>Refused</h1>" in html and "You may not run the admin action “" in html
    assert "This needs the Session admin role" in html
    assert catalog.requests == []
    assert not ToolRouterSession.objects.exists()
    event = AuditEvent.objects.get(action="access.refused")
    assert event.outcome == "refused"
    assert event.details["operation"] == f"admin.enduser.{action}"
    assert event.details["missing"] == [NEEDS[action]]


def test_session_admin_sees_every_session_action(session_admin_client: Client, end_users) -> None:
    html = session_admin_client.get(url()).content.decode()
    for action in ["create_sessions", "refresh_sessions", "change_session_toolkits"]:
        assert f'value="{action}"' in html
    assert 'value="delete_selected"' not in html


def test_the_end_user_admin_needs_a_login_and_a_role(
    client: Client, outsider: User, auditor: User
) -> None:
    response = client.get(url())
    assert response.status_code == HTTPStatus.FOUND and "login" in response.url

    client.force_login(outsider)
    assert client.get(url()).status_code == HTTPStatus.FORBIDDEN

    client.force_login(auditor)
    assert client.get(url()).status_code == HTTPStatus.OK
