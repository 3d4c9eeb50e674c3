"""Revealing an MCP URL: a POST with CSRF, audited first, fail closed, rate limited."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from http import HTTPStatus
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError
from django.urls import reverse
from django.utils import timezone

from sessions_app import trail
from sessions_app.models import AuditEvent, ToolRouterSession
from sessions_app.tool_router import mcp_url
from tests.factories import HX, client_for, make_end_user, store_session
from tests.helpers import reveal_url

MCP_URL = "https://mcp.example.test/tool_router/trs_reveal00001/mcp?k=PRIVATEPART"


@pytest.fixture
def session(db: None) -> ToolRouterSession:
    end_user = make_end_user("usr_reveal", "Rita Reveal")
    return store_session(end_user, "trs_reveal00001", mcp_url=MCP_URL)


def _reveals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="mcp_url.reveal").order_by("id"))


def test_support_sees_the_full_url_once_the_reveal_is_audited(
    session: ToolRouterSession, support_user: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = client_for(support_user).post(reveal_url(session), headers=HX)
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert MCP_URL.replace("&", "&amp;") in html
    assert 'hx-history="false"' in html
    assert "data-copy=" in html and 'data-remask-after="60"' in html
    assert b"<html" not in response.content
    assert "no-store" in response["Cache-Control"]

    [event] = _reveals()
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.actor == support_user
    assert event.session_ref == "trs_reveal00001"
    assert event.end_user_external_id == "usr_reveal"
    assert event.details == {"fingerprint": mcp_url.fingerprint(MCP_URL)}
    assert "PRIVATEPART" not in str(event.details) + event.reason
    assert "PRIVATEPART" not in caplog.text


def test_the_masked_url_comes_back_inside_the_revealed_fragment(
    session: ToolRouterSession, support_user: User
) -> None:
    html = client_for(support_user).post(reveal_url(session), headers=HX).content.decode()
    template = re.search(r"<template data-masked>(.*?)</template>", html, re.S)
    assert template is not None
    assert "PRIVATEPART" not in template.group(1)
    assert mcp_url.fingerprint(MCP_URL) in template.group(1)
    assert "Reveal" in template.group(1)


def test_it_answers_nothing_if_the_audit_write_fails(
    session: ToolRouterSession, support_user: User
) -> None:
    client = client_for(support_user)
    with mock.patch("sessions_app.trail.record", autospec=True, side_effect=DatabaseError):
        response = client.post(reveal_url(session), headers=HX)
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert b"PRIVATEPART" not in response.content
    assert b"trs_reveal00001/mcp" not in response.content
    assert b"could not be written to the audit log" in response.content
    assert "no-store" in response["Cache-Control"]
    assert _reveals() == []


@pytest.mark.parametrize("actor", ["auditor", "outsider"])
def test_it_is_refused_without_the_reveal_permission(
    session: ToolRouterSession, actor: str, request: pytest.FixtureRequest
) -> None:
    user = request.getfixturevalue(actor)
    response = client_for(user).post(reveal_url(session), headers=HX)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert b"PRIVATEPART" not in response.content
    assert b"trs_reveal00001" not in response.content
    assert _reveals() == []
    refused = AuditEvent.objects.get(action="access.refused", actor=user)
    assert "reveal_mcp_url" in refused.reason


def test_csrf_is_enforced_on_reveal(session: ToolRouterSession, support_user: User) -> None:
    client = client_for(support_user, enforce_csrf_checks=True)
    response = client.post(reveal_url(session), headers=HX)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert b"PRIVATEPART" not in response.content
    assert _reveals() == []

    # With the token the card page hands out, the same request goes through.
    client.get(reverse("sessions_app:support_user_card", args=[session.end_user.public_id]))
    token = client.cookies["csrftoken"].value
    response = client.post(reveal_url(session), headers={**HX, "X-CSRFToken": token})
    assert response.status_code == HTTPStatus.OK
    assert len(_reveals()) == 1


def test_the_per_staff_limit_refuses_with_a_clear_message(
    session: ToolRouterSession, support_user: User, session_admin: User, settings
) -> None:
    settings.SUPPORT_REVEALS_PER_HOUR = 2
    client = client_for(support_user)
    for _ in range(2):
        assert client.post(reveal_url(session), headers=HX).status_code == HTTPStatus.OK
    response = client.post(reveal_url(session), headers=HX)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert b"PRIVATEPART" not in response.content
    assert b"2 MCP URLs in the last hour" in response.content
    outcomes = [e.outcome for e in _reveals()]
    assert outcomes == ["success", "success", "refused"]
    # The limit is per staff user.
    assert (
        client_for(session_admin).post(reveal_url(session), headers=HX).status_code == HTTPStatus.OK
    )


def test_reveals_older_than_an_hour_do_not_count(
    session: ToolRouterSession, support_user: User, settings
) -> None:
    settings.SUPPORT_REVEALS_PER_HOUR = 1
    earlier = timezone.now() - timedelta(hours=1, minutes=1)
    with mock.patch("sessions_app.trail.timezone.now", return_value=earlier):
        trail.record(
            action="mcp_url.reveal",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=support_user,
            session=session,
        )
    assert (
        client_for(support_user).post(reveal_url(session), headers=HX).status_code == HTTPStatus.OK
    )


def test_a_superseded_session_cannot_be_revealed(
    session: ToolRouterSession, support_user: User
) -> None:
    session.status = ToolRouterSession.Status.SUPERSEDED
    session.save(update_fields=["status"])
    response = client_for(support_user).post(reveal_url(session), headers=HX)
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert b"PRIVATEPART" not in response.content
    assert _reveals() == []


def test_without_javascript_the_reveal_is_a_full_page_that_is_not_stored(
    session: ToolRouterSession, support_user: User
) -> None:
    response = client_for(support_user).post(reveal_url(session))
    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert "<html" in html and "PRIVATEPART" in html
    assert "PRIVATEPART" not in html.split("</title>")[0]
    assert "no-store" in response["Cache-Control"]
    assert len(_reveals()) == 1


def test_the_limit_says_when_to_try_again(
    session: ToolRouterSession, support_user: User, settings
) -> None:
    settings.SUPPORT_REVEALS_PER_HOUR = 2
    now = timezone.now()
    # The older of the two reveals leaves the hour's window in 12 minutes: then one more may pass.
    for minutes_ago in (48, 5):
        with mock.patch(
            "sessions_app.trail.timezone.now", return_value=now - timedelta(minutes=minutes_ago)
        ):
            trail.record(
                action="mcp_url.reveal",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=support_user,
                session=session,
            )
    response = client_for(support_user).post(reveal_url(session), headers=HX)

    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert 11 * 60 < int(response["Retry-After"]) <= 12 * 60
    at = (now + timedelta(minutes=12)).strftime("%H:%M")
    text = response.content.decode()
    assert "try again later" not in text
    assert f"try again in 12 minutes (at {at} UTC) or ask a session admin." in text
