"""Checking a session's connections at Composio (the emulator, over HTTP, through the real SDK)."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client
from django.urls import reverse

from sessions_app.composio import seam as composio_seam
from sessions_app.models import ToolRouterSession
from tests.factories import HX, make_end_user, store_session


@pytest.fixture
def remote_session(emulator, db: None) -> ToolRouterSession:
    """A session that exists at the emulator, recorded locally as the console would."""
    remote = composio_seam.create_session(user_id="usr_conn", toolkits=["github", "gmail"])
    return store_session(
        make_end_user("usr_conn"),
        remote.session_id,
        mcp_url=remote.mcp_url,
        toolkits=remote.toolkits,
    )


def _url(session: ToolRouterSession) -> str:
    return reverse("sessions_app:support_session_connections", args=[session.public_id])


def test_it_shows_a_badge_per_toolkit_from_composio(
    remote_session: ToolRouterSession, support_client: Client, emulator
) -> None:
    emulator.set_connection(remote_session.session_id, "github", "ACTIVE")
    emulator.set_connection(remote_session.session_id, "gmail", "EXPIRED")
    before = emulator.count("session.toolkits")
    response = support_client.get(_url(remote_session), headers=HX)
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "<html" not in html
    assert 'badge-active">active' in html
    assert 'badge-expired">expired' in html
    assert emulator.count("session.toolkits") > before
    assert remote_session.mcp_url not in html


def test_a_toolkit_without_a_connected_account_says_not_connected(
    remote_session: ToolRouterSession, support_client: Client, emulator
) -> None:
    emulator.set_connection(remote_session.session_id, "github", "INITIATED")
    html = support_client.get(_url(remote_session), headers=HX).content.decode()
    assert 'badge-initiated">initiated' in html
    assert "not connected" in html  # gmail


def test_when_composio_is_down_the_card_says_so_in_place(
    remote_session: ToolRouterSession, support_client: Client, emulator
) -> None:
    emulator.faults.enqueue(503, endpoint="session.get", times=10)
    response = support_client.get(_url(remote_session), headers=HX)
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Could not check the connections" in html
    assert "HTTP 503" in html
    assert "Try again" in html


def test_when_composio_is_slow_the_check_gives_up_with_a_message(
    remote_session: ToolRouterSession, support_client: Client, emulator, settings
) -> None:
    settings.COMPOSIO_READ_TIMEOUT = 0.3
    composio_seam.reset_client()
    emulator.faults.latency(2.0, endpoint="session.get")
    response = support_client.get(_url(remote_session), headers=HX)
    assert response.status_code == HTTPStatus.OK
    assert b"did not answer in time" in response.content


def test_while_composio_is_down_the_card_and_the_reveal_still_work(
    remote_session: ToolRouterSession, support_client: Client, emulator
) -> None:
    emulator.faults.enqueue(503, times=50)
    card = reverse("sessions_app:support_user_card", args=[remote_session.end_user.public_id])
    assert support_client.get(card, headers=HX).status_code == HTTPStatus.OK
    reveal = reverse("sessions_app:support_mcp_reveal", args=[remote_session.public_id])
    response = support_client.post(reveal, headers=HX)
    assert response.status_code == HTTPStatus.OK
    assert remote_session.mcp_url.encode() in response.content


def test_without_javascript_the_check_renders_the_whole_card(
    remote_session: ToolRouterSession, support_client: Client, emulator
) -> None:
    response = support_client.get(_url(remote_session))
    html = response.content.decode()
    assert "<html" in html and "usr_conn" in html
    assert "not connected" in html
    assert remote_session.mcp_url not in html


def test_a_session_unknown_to_composio_is_explained(
    remote_session: ToolRouterSession, support_client: Client, emulator
) -> None:
    composio_seam.delete_session(remote_session.session_id)
    html = support_client.get(_url(remote_session), headers=HX).content.decode()
    assert "Composio does not know it" in html
