"""Step-up before secrets: a reveal (or a bulk start) whose sign-in is older than
STEP_UP_SECONDS asks again, audits the prompt, and runs the action only once the check passes
(the reveal is audited then, and only then)."""

from __future__ import annotations

from http import HTTPStatus

import pyotp
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sessions_app import roles
from sessions_app.models import AuditEvent, ToolRouterSession
from tests.factories import HX, client_for, make_end_user, make_staff, store_session
from tests.helpers import reveal_url
from tests.signin.test_mfa import IP, enrol_totp, sign_in

MCP_URL = "https://mcp.example.test/tool_router/trs_stepup0001/mcp?k=STEPUPSECRET"


@pytest.fixture(autouse=True)
def step_up_on(settings) -> None:
    settings.STEP_UP_REQUIRED = True
    settings.STEP_UP_SECONDS = 900


@pytest.fixture
def session(db: None) -> ToolRouterSession:
    return store_session(make_end_user("usr_stepup"), "trs_stepup0001", mcp_url=MCP_URL)


def _count(action: str) -> int:
    return AuditEvent.objects.filter(action=action).count()


def test_a_reveal_without_a_recent_sign_in_asks_again_then_reveals(session, support_user) -> None:
    client = client_for(support_user, REMOTE_ADDR=IP)  # signed in, but no sign-in check recorded
    asked = client.post(reveal_url(session))
    assert asked.status_code == HTTPStatus.FOUND
    assert asked["Location"].startswith(reverse("account_reauthenticate") + "?next=")
    assert _count("mcp_url.reveal") == 0
    [prompt] = AuditEvent.objects.filter(action="auth.step_up")
    assert prompt.actor == support_user and prompt.ip_address == IP
    assert prompt.details == {"operation": "mcp_url.reveal", "window_seconds": 900}
    # The password again: the suspended reveal runs and answers the page with the URL.
    done = client.post(asked["Location"], {"password": "pw-" + support_user.username})
    assert done.status_code == HTTPStatus.OK
    assert MCP_URL.replace("&", "&amp;") in done.content.decode()
    assert _count("mcp_url.reveal") == 1
    # Within the window the next reveal goes straight through.
    assert client.post(reveal_url(session), headers=HX).status_code == HTTPStatus.OK
    assert _count("mcp_url.reveal") == 2 and _count("auth.step_up") == 1


def test_htmx_is_sent_to_the_check_as_a_whole_page(session, support_user) -> None:
    response = client_for(support_user).post(reveal_url(session), headers=HX)
    assert response.status_code == HTTPStatus.NO_CONTENT
    assert response["HX-Redirect"].startswith(reverse("account_reauthenticate"))
    assert _count("mcp_url.reveal") == 0


def test_a_fresh_sign_in_counts_until_the_window_ends(session, support_user, settings) -> None:
    client, _ = sign_in(support_user.username)
    assert client.post(reveal_url(session), headers=HX).status_code == HTTPStatus.OK
    settings.STEP_UP_SECONDS = 0  # the window has passed
    assert client.post(reveal_url(session), headers=HX).status_code == HTTPStatus.NO_CONTENT
    assert _count("mcp_url.reveal") == 1 and _count("auth.step_up") == 1


def test_a_user_with_totp_is_asked_for_a_code(
    session, django_capture_on_commit_callbacks, settings
) -> None:
    user = make_staff("stella_stepup", roles.SUPPORT)
    client, _ = sign_in(user.username)
    with django_capture_on_commit_callbacks(execute=True):
        secret = enrol_totp(client)
    settings.STEP_UP_SECONDS = 0
    asked = client.post(reveal_url(session))
    assert asked["Location"].startswith(reverse("mfa_reauthenticate") + "?next=")
    settings.STEP_UP_SECONDS = 900
    wrong = client.post(asked["Location"], {"code": "123456"})
    assert wrong.status_code == HTTPStatus.OK and _count("mcp_url.reveal") == 0
    done = client.post(asked["Location"], {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == HTTPStatus.OK and _count("mcp_url.reveal") == 1


@pytest.mark.parametrize(
    ("role", "expected"), [(None, HTTPStatus.FOUND), ("auditor", HTTPStatus.FORBIDDEN)]
)
def test_who_may_not_reveal_is_refused_before_any_prompt(session, auditor, role, expected) -> None:
    client = client_for(auditor) if role else Client()
    response = client.post(reveal_url(session))
    assert response.status_code == expected
    if role is None:
        assert response["Location"].startswith(reverse("login"))
    assert _count("auth.step_up") == 0 and _count("mcp_url.reveal") == 0


def test_retrying_a_bulk_job_asks_again(session_admin: User, support_user, db) -> None:
    from django.utils import timezone

    from tests.factories import make_finished_job

    end_user = make_end_user("usr_bulk_stepup")
    stored = store_session(end_user, "trs_bulkstep01", mcp_url=MCP_URL)
    job = make_finished_job(end_user, stored, session_admin, timezone.now())
    url = reverse("bulk:job_retry", args=[job.public_id])
    asked = client_for(session_admin).post(url)
    assert asked.status_code == HTTPStatus.FOUND
    assert asked["Location"].startswith(reverse("account_reauthenticate"))
    [prompt] = AuditEvent.objects.filter(action="auth.step_up")
    assert prompt.details["operation"] == "bulk.start"
    assert client_for(support_user).post(url).status_code == HTTPStatus.FORBIDDEN


def test_starting_a_bulk_job_from_the_admin_asks_again_then_starts_it_once(
    catalog, session_admin: User, settings, immediate, fast_bulk
) -> None:
    from sessions_app.models import BulkJob
    from tests.factories import admin_action_confirmed, make_end_users

    settings.TOOL_ROUTER_SYNC_LIMIT = 2
    users = make_end_users(3)
    client = client_for(session_admin, REMOTE_ADDR=IP)
    asked = admin_action_confirmed(client, "create_sessions", users, ["github"], follow=False)
    assert asked.status_code == HTTPStatus.FOUND
    assert asked["Location"].startswith(reverse("account_reauthenticate") + "?next=")
    assert not BulkJob.objects.exists() and _count("bulk.start") == 0
    assert AuditEvent.objects.get(action="auth.step_up").details["operation"] == "bulk.start"
    done = client.post(asked["Location"], {"password": "pw-" + session_admin.username})
    job = BulkJob.objects.get()
    assert done.status_code == HTTPStatus.FOUND
    assert done["Location"] == reverse("admin:sessions_app_bulkjob_change", args=[job.pk])
    assert job.total == 3 and _count("bulk.start") == 1


def test_a_reconnect_link_without_a_recent_sign_in_asks_again_and_calls_nothing(
    support_user, catalog
) -> None:
    from sessions_app.tool_router import sessions as session_service

    end_user = make_end_user("usr_stepup_link")
    created = session_service.tool_router_session_create(
        end_user=end_user, toolkits=["github"], actor=None
    )
    assert created.ok, created.message
    remote = ToolRouterSession.objects.get(end_user=end_user, status="active")
    url = reverse("sessions_app:support_connect_link", args=[remote.public_id, "github"])
    before = catalog.count("session.link")

    asked = client_for(support_user, REMOTE_ADDR=IP).post(url)

    assert asked.status_code == HTTPStatus.FOUND
    assert asked["Location"].startswith(reverse("account_reauthenticate") + "?next=")
    assert catalog.count("session.link") == before
    assert _count("connect_link.create") == 0
    [prompt] = AuditEvent.objects.filter(action="auth.step_up")
    assert prompt.details["operation"] == "connection.reconnect_link"
