"""Stale sessions in the admin: the badge in the end-user and session lists, their filter, and
the "re-create missing sessions" action (a background job), who may run it; and the support
views' answers about a stale session for each role."""

from __future__ import annotations

from http import HTTPStatus

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, BulkJob, EndUser, ToolRouterSession
from sessions_app.tool_router import drift
from tests.factories import HX, admin_action, admin_action_confirmed, client_for, give_session
from tests.helpers import SESSION_URL, messages_of, reveal_url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_bulk", "immediate")]

ACTION = "recreate_missing_sessions"
SESSIONS_CHANGELIST = "admin:sessions_app_toolroutersession_changelist"


@pytest.fixture
def lost(
    catalog: Emulator, emu_http: httpx.Client, end_users: list[EndUser], session_admin: User
) -> list[ToolRouterSession]:
    """usr_1..usr_3 with github sessions; Composio lost usr_1's and usr_2's (marked stale)."""
    made = [give_session(user, ["github", "gmail"], session_admin) for user in end_users]
    for session in made[:2]:
        # Deleted in Composio's dashboard: gone there, still stored here.
        assert emu_http.delete(f"{SESSION_URL}/{session.session_id}").status_code == 200
        drift.mark_stale(session, via="test")
    return made


def test_the_lists_show_the_badge_and_filter_stale_sessions(
    lost: list[ToolRouterSession], session_admin_client: Client, auditor_client: Client
) -> None:
    for client in (session_admin_client, auditor_client):
        users = client.get(reverse("admin:sessions_app_enduser_changelist")).content.decode()
        assert users.count("badge-stale") == 2
        stale_only = client.get(
            reverse("admin:sessions_app_enduser_changelist"), {"stale": "yes"}
        ).content.decode()
        assert "usr_1" in stale_only and "usr_3" not in stale_only

        listed = client.get(reverse(SESSIONS_CHANGELIST)).content.decode()
        assert listed.count("badge-stale") == 2
        filtered = client.get(reverse(SESSIONS_CHANGELIST), {"stale": "yes"})
        assert filtered.context["cl"].result_count == 2


def test_recreate_asks_first_then_runs_a_job_for_the_stale_ones_only(
    lost: list[ToolRouterSession],
    end_users: list[EndUser],
    session_admin_client: Client,
    catalog: Emulator,
) -> None:
    before = catalog.count("session.create")
    page = admin_action(session_admin_client, ACTION, end_users)
    assert page.status_code == HTTPStatus.OK
    html = page.content.decode()
    assert "2 of 3 selected end users have stale sessions" in html
    assert "usr_3" not in html
    assert catalog.count("session.create") == before

    response = admin_action_confirmed(session_admin_client, ACTION, end_users)

    job = BulkJob.objects.get()
    assert job.kind == BulkJob.Kind.RECREATE and job.total == 2
    assert job.state == BulkJob.State.FINISHED and job.counts.get("succeeded") == 2
    assert "Started a background job for 2 end users" in " ".join(messages_of(response))
    for old in lost[:2]:
        old.refresh_from_db()
        assert old.status == ToolRouterSession.Status.SUPERSEDED
        new = ToolRouterSession.objects.get(end_user=old.end_user, status="active")
        assert new.toolkits == ["github", "gmail"] and new.stale_since is None
        assert new.session_id in catalog.sessions
    lost[2].refresh_from_db()
    assert lost[2].status == ToolRouterSession.Status.ACTIVE  # not stale: untouched
    assert drift.stale_count() == 0
    refreshes = AuditEvent.objects.filter(action="session.refresh", outcome="success")
    assert refreshes.count() == 2


def test_recreate_from_the_session_list(
    lost: list[ToolRouterSession], session_admin_client: Client
) -> None:
    response = session_admin_client.post(
        reverse(SESSIONS_CHANGELIST),
        {"action": ACTION, "_selected_action": [s.pk for s in lost], "post": "yes"},
        follow=True,
    )
    assert response.status_code == HTTPStatus.OK
    assert BulkJob.objects.get().total == 2
    assert drift.stale_count() == 0


def test_recreate_with_nothing_stale_starts_nothing(
    lost: list[ToolRouterSession], end_users: list[EndUser], session_admin_client: Client
) -> None:
    response = admin_action_confirmed(session_admin_client, ACTION, end_users[2:])
    assert "None of the selected end users has a session Composio no longer knows" in " ".join(
        messages_of(response)
    )
    assert not BulkJob.objects.exists()


@pytest.mark.parametrize(
    "changelist", ["admin:sessions_app_enduser_changelist", SESSIONS_CHANGELIST]
)
def test_recreate_is_refused_to_the_wrong_roles_and_anonymous(
    lost: list[ToolRouterSession],
    end_users: list[EndUser],
    client: Client,
    support_user: User,
    auditor: User,
    changelist: str,
) -> None:
    url = reverse(changelist)
    selected = [u.pk for u in end_users] if "enduser" in changelist else [s.pk for s in lost]
    data = {"action": ACTION, "_selected_action": selected, "post": "yes"}

    anonymous = client.post(url, data)
    assert anonymous.status_code == HTTPStatus.FOUND and "login" in anonymous["Location"]

    for user in (support_user, auditor):
        staff = client_for(user)
        assert f'value="{ACTION}"' not in staff.get(url).content.decode()
        response = staff.post(url, data)
        assert response.status_code == HTTPStatus.FORBIDDEN
        assert "You may not run the admin action “Re-create missing sessions" in (
            response.content.decode()
        )
    assert not BulkJob.objects.exists()
    refused = AuditEvent.objects.filter(action="access.refused")
    assert {e.details["missing"][0] for e in refused} == {"sessions_app.refresh_session"}
    assert drift.stale_count() == 2


def test_the_session_admin_sees_the_action_on_both_lists(
    lost: list[ToolRouterSession], session_admin_client: Client
) -> None:
    for changelist in ("admin:sessions_app_enduser_changelist", SESSIONS_CHANGELIST):
        assert f'value="{ACTION}"' in session_admin_client.get(reverse(changelist)).content.decode()


# --- The support views about a stale session, per role -----------------------------------------


def test_reveal_of_a_stale_session_is_withheld_and_says_why(
    lost: list[ToolRouterSession], support_user: User
) -> None:
    session = lost[0]

    response = client_for(support_user).post(reveal_url(session), headers=HX)

    assert response.status_code == HTTPStatus.CONFLICT
    html = response.content.decode()
    assert session.mcp_url not in html and "/mcp" not in html
    assert "Not revealed: Composio no longer knows this session" in html
    assert "Refresh the session" in html
    [event] = AuditEvent.objects.filter(action="mcp_url.reveal")
    assert event.outcome == AuditEvent.Outcome.FAILURE
    assert event.details["stale"] is True and event.details["stale_since"]
    assert event.actor == support_user


def test_reveal_of_a_known_session_is_unchanged(
    lost: list[ToolRouterSession], support_user: User
) -> None:
    response = client_for(support_user).post(reveal_url(lost[2]), headers=HX)
    assert response.status_code == HTTPStatus.OK
    assert lost[2].mcp_url in response.content.decode()
    assert "stale" not in AuditEvent.objects.get(action="mcp_url.reveal").details


def test_reveal_of_a_stale_session_for_anonymous_and_the_wrong_role(
    lost: list[ToolRouterSession], client: Client, auditor: User, outsider: User
) -> None:
    anonymous = client.post(reveal_url(lost[0]))
    assert anonymous.status_code == HTTPStatus.FOUND and "login" in anonymous["Location"]
    for user in (auditor, outsider):
        assert client_for(user).post(reveal_url(lost[0])).status_code == HTTPStatus.FORBIDDEN
    assert not AuditEvent.objects.filter(action="mcp_url.reveal").exists()


def test_the_stale_card_for_each_role(
    lost: list[ToolRouterSession], client: Client, auditor: User, support_user: User
) -> None:
    url = reverse("sessions_app:support_user_card", args=[lost[0].end_user.public_id])
    anonymous = client.get(url)
    assert anonymous.status_code == HTTPStatus.FOUND and "login" in anonymous["Location"]
    assert client_for(auditor).get(url).status_code == HTTPStatus.FORBIDDEN
    page = client_for(support_user).get(url).content.decode()
    assert "badge-stale" in page and "ask a session admin to refresh it" in page
