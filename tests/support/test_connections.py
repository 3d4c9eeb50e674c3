"""Checking a session's connections at Composio (the emulator, over HTTP, through the real SDK)."""

from __future__ import annotations

import time
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sessions_app.composio import seam as composio_seam
from sessions_app.models import AuditEvent, ToolRouterSession
from tests.factories import HX, client_for


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


@pytest.mark.parametrize("status", ["INACTIVE", "REVOKED", "INITIALIZING"])
def test_an_account_that_cannot_run_shows_its_status_word_and_not_connected(
    remote_session: ToolRouterSession, support_client: Client, emulator, status: str
) -> None:
    emulator.set_connection(remote_session.session_id, "github", status)
    emulator.set_connection(remote_session.session_id, "gmail", "ACTIVE")

    html = support_client.get(_url(remote_session), headers=HX).content.decode()

    word = status.lower()
    assert f'badge-{word}">{word}</span> <span class="muted">not connected' in html
    assert 'badge-active">active</span></li>' in html


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
    assert "Composio no longer knows this session" in html
    assert "Refresh the session to give the user a new one." in html
    remote_session.refresh_from_db()
    assert remote_session.is_stale  # marked there and then (tool_router.drift)


# --- Check now (POST, past the cache, limited per staff user and session) ------------------------


def _check_url(session: ToolRouterSession) -> str:
    return reverse("sessions_app:support_session_connections_check", args=[session.public_id])


def test_the_badges_say_how_old_the_check_is_and_offer_check_now(
    remote_session: ToolRouterSession, support_client: Client, emulator
) -> None:
    html = support_client.get(_url(remote_session), headers=HX).content.decode()
    assert "checked 0 s ago" in html
    assert f'hx-post="{_check_url(remote_session)}"' in html
    assert ">Check now</button>" in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_check_now_asks_composio_past_the_cache_and_every_view_sees_its_answer(
    remote_session: ToolRouterSession, support_client: Client, emulator
) -> None:
    support_client.get(_url(remote_session), headers=HX)
    emulator.set_connection(remote_session.session_id, "github", "ACTIVE")
    # Within the cache's 30 s a view still shows the state it cached.
    assert b"badge-active" not in support_client.get(_url(remote_session), headers=HX).content
    before = emulator.count()

    response = support_client.post(_check_url(remote_session), headers=HX)

    assert response.status_code == HTTPStatus.OK
    assert 'badge-active">active' in response.content.decode()
    assert "<html" not in response.content.decode()
    assert emulator.count() - before == 2  # the session, then its toolkits
    assert b"badge-active" in support_client.get(_url(remote_session), headers=HX).content
    assert emulator.count() - before == 2


def test_check_now_is_limited_per_staff_user_and_says_when_to_try_again(
    remote_session: ToolRouterSession,
    support_user: User,
    session_admin: User,
    emulator,
    settings,
) -> None:
    settings.CONNECTION_CHECK_NOW_SECONDS = 10
    sam, ada = client_for(support_user), client_for(session_admin)
    assert sam.post(_check_url(remote_session), headers=HX).status_code == HTTPStatus.OK
    before = emulator.count()

    again = sam.post(_check_url(remote_session), headers=HX)

    assert again.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert 1 <= int(again["Retry-After"]) <= 10
    html = again.content.decode()
    assert f"you may check again in {again['Retry-After']} s" in html
    assert "not connected" in html  # the cached state is still shown
    assert emulator.count() == before  # nothing was sent
    # Another staff user has a turn of their own.
    assert ada.post(_check_url(remote_session), headers=HX).status_code == HTTPStatus.OK
    assert emulator.count() - before == 2
    assert not AuditEvent.objects.filter(action="access.refused").exists()


def test_check_now_is_allowed_again_once_its_interval_has_passed(
    remote_session: ToolRouterSession, support_client: Client, emulator, settings
) -> None:
    settings.CONNECTION_CHECK_NOW_SECONDS = 1
    assert support_client.post(_check_url(remote_session), headers=HX).status_code == 200
    time.sleep(2.1)  # the cache keeps whole seconds
    before = emulator.count()
    assert support_client.post(_check_url(remote_session), headers=HX).status_code == 200
    assert emulator.count() - before == 2


def test_without_javascript_check_now_answers_the_whole_card(
    remote_session: ToolRouterSession, support_client: Client, emulator
) -> None:
    response = support_client.post(_check_url(remote_session))
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "<html" in html and "usr_conn" in html and "checked 0 s ago" in html
    limited = support_client.post(_check_url(remote_session))
    assert limited.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "<html" in limited.content.decode()
    assert "you may check again in" in limited.content.decode()


def test_check_now_is_a_post_with_a_csrf_token(
    remote_session: ToolRouterSession, support_user: User, emulator
) -> None:
    before = emulator.count()
    client = client_for(support_user)
    assert client.get(_check_url(remote_session)).status_code == HTTPStatus.METHOD_NOT_ALLOWED
    strict = client_for(support_user, enforce_csrf_checks=True)
    response = strict.post(_check_url(remote_session), headers=HX)
    assert response.status_code == HTTPStatus.FORBIDDEN and b"CSRF" in response.content
    assert emulator.count() == before


def test_anonymous_visitors_are_sent_to_log_in_before_a_check_now(
    remote_session: ToolRouterSession, emulator
) -> None:
    before = emulator.count()
    response = Client().post(_check_url(remote_session), headers=HX)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/login/")
    assert emulator.count() == before


@pytest.mark.parametrize("actor", ["auditor", "outsider"])
def test_roles_without_the_support_permissions_are_refused_check_now_and_it_is_audited(
    remote_session: ToolRouterSession, actor: str, request: pytest.FixtureRequest, emulator
) -> None:
    user = request.getfixturevalue(actor)
    before = emulator.count()
    response = client_for(user).post(_check_url(remote_session), headers=HX)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert b"badge" not in response.content
    refused = AuditEvent.objects.filter(action="access.refused", actor=user)
    assert [e.outcome for e in refused] == [AuditEvent.Outcome.REFUSED]
    assert emulator.count() == before


@pytest.mark.parametrize("actor", ["support_user", "session_admin"])
def test_support_and_session_admins_may_check_now(
    remote_session: ToolRouterSession, actor: str, request: pytest.FixtureRequest, emulator
) -> None:
    response = client_for(request.getfixturevalue(actor)).post(
        _check_url(remote_session), headers=HX
    )
    assert response.status_code == HTTPStatus.OK
    assert b"not connected" in response.content


def test_check_now_of_a_session_that_is_no_longer_active_is_a_404(
    remote_session: ToolRouterSession, support_client: Client, emulator
) -> None:
    remote_session.status = ToolRouterSession.Status.SUPERSEDED
    remote_session.save(update_fields=["status"])
    before = emulator.count()
    assert support_client.post(_check_url(remote_session), headers=HX).status_code == 404
    assert emulator.count() == before
