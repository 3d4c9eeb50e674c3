"""The end-user admin's refresh, change-toolkits and delete actions, both steps, via the test
client and the emulator, Composio's faults on refresh included."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.test import Client

from sessions_app.composio import seam as composio_seam
from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, SessionOperation, ToolRouterSession
from sessions_app.tool_router.mcp_url import short_id
from tests.factories import admin_action, admin_action_confirmed, give_session
from tests.helpers import messages_of

pytestmark = pytest.mark.django_db


# --- refresh, change, delete -------------------------------------------------------------------


def test_refresh_action_preselects_the_current_toolkits(
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser], session_admin: User
) -> None:
    give_session(end_users[0], ["github", "notion"], session_admin)

    html = admin_action(session_admin_client, "refresh_sessions", end_users[:1]).content.decode()

    assert 'value="github" checked' in html and 'value="notion" checked' in html
    assert 'value="gmail" checked' not in html


def test_refresh_action_replaces_the_session_and_deletes_the_old_one(
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser], session_admin: User
) -> None:
    old = give_session(end_users[0], ["github"], session_admin)
    catalog.reset()

    response = admin_action_confirmed(
        session_admin_client, "refresh_sessions", end_users[:1], ["github", "gmail"]
    )

    assert any("Refreshed the session of usr_1" in m for m in messages_of(response))
    assert [r.endpoint for r in catalog.requests] == ["session.create", "session.delete"]
    assert catalog.requests[0].json["toolkits"] == {"enable": ["github", "gmail"]}
    assert catalog.requests[1].path.endswith(old.session_id)
    new = ToolRouterSession.objects.get(status="active")
    assert new.replaces == old and new.session_id != old.session_id
    old.refresh_from_db()
    assert old.status == "superseded" and old.remote_deleted_at is not None


def test_refresh_action_can_keep_each_users_current_toolkits(
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser], session_admin: User
) -> None:
    give_session(end_users[0], ["github"], session_admin)
    give_session(end_users[1], ["slack", "notion"], session_admin)
    catalog.reset()

    response = admin_action_confirmed(
        session_admin_client, "refresh_sessions", end_users[:2], [], keep_current="on"
    )

    assert "2 end users: 2 succeeded." in messages_of(response)
    sent = {r.json["user_id"]: r.json["toolkits"] for r in catalog.requests if r.json}
    assert sent == {"usr_1": {"enable": ["github"]}, "usr_2": {"enable": ["slack", "notion"]}}


def test_change_toolkits_action_keeps_the_session_id(
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser], session_admin: User
) -> None:
    session = give_session(end_users[0], ["github"], session_admin)

    response = admin_action_confirmed(
        session_admin_client, "change_session_toolkits", end_users[:2], ["gmail"]
    )

    messages = messages_of(response)
    assert "2 end users: 1 succeeded, 1 skipped." in messages
    assert any("usr_2" in m and "no active session" in m for m in messages)
    session.refresh_from_db()
    assert session.status == "active" and session.toolkits == ["gmail"]
    assert ToolRouterSession.objects.count() == 1


def test_change_toolkits_conflict_tells_the_admin_to_reload(
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser], session_admin: User
) -> None:
    give_session(end_users[0], ["github"], session_admin)
    catalog.faults.enqueue(409, endpoint="session.update")

    response = admin_action_confirmed(
        session_admin_client, "change_session_toolkits", end_users[:1], ["gmail"]
    )

    assert any("usr_1" in m and "Someone else changed" in m for m in messages_of(response))
    assert ToolRouterSession.objects.get().toolkits == ["github"]


def test_delete_action_confirms_then_deletes_at_composio_and_keeps_the_row(
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser], session_admin: User
) -> None:
    session = give_session(end_users[0], ["github"], session_admin)

    confirm = admin_action(session_admin_client, "delete_sessions", end_users[:2])
    assert confirm.status_code == HTTPStatus.OK
    html = confirm.content.decode()
    assert (
        "Are you sure?" in html
        and short_id(session.session_id) in html
        and "no active session" in html
    )
    assert catalog.count("session.delete") == 0

    response = admin_action_confirmed(session_admin_client, "delete_sessions", end_users[:1])

    assert any("Deleted session" in m and "usr_1" in m for m in messages_of(response))
    assert catalog.count("session.delete") == 1
    session.refresh_from_db()
    assert session.status == "deleted"


# --- faults through the admin ------------------------------------------------------------------

FAULTS = [
    ("400", lambda e: e.faults.enqueue(400, endpoint="session.create"), "failed", "HTTP 400"),
    ("401", lambda e: e.faults.enqueue(401, endpoint="session.create"), "failed", "401"),
    (
        "429",
        lambda e: e.faults.enqueue(429, endpoint="session.create", retry_after=30),
        "failed",
        "retry in 30 s",
    ),
    ("500", lambda e: e.faults.enqueue(500, endpoint="session.create"), "unknown", "HTTP 500"),
    (
        "malformed",
        lambda e: e.faults.malformed(endpoint="session.create"),
        "unknown",
        "malformed answer",
    ),
    (
        "timeout",
        lambda e: e.faults.latency(1.0, endpoint="session.create"),
        "unknown",
        "did not answer in time",
    ),
]


@pytest.mark.parametrize(("name", "fault", "state", "fragment"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_composio_fault_on_refresh_names_the_user_and_keeps_the_old_session(
    session_admin_client: Client,
    catalog: Emulator,
    end_users: list[EndUser],
    session_admin: User,
    settings,
    name: str,
    fault,
    state: str,
    fragment: str,
) -> None:
    old = give_session(end_users[0], ["github"], session_admin)
    catalog.reset()
    settings.COMPOSIO_READ_TIMEOUT = 0.3
    composio_seam.reset_client()
    fault(catalog)

    response = admin_action_confirmed(
        session_admin_client, "refresh_sessions", end_users[:1], ["gmail"]
    )

    messages = messages_of(response)
    assert any("usr_1" in m and fragment in m for m in messages), messages
    assert catalog.count("session.create") == 1 and catalog.count("session.delete") == 0
    old.refresh_from_db()
    assert old.status == "active"
    assert ToolRouterSession.objects.count() == 1
    assert SessionOperation.objects.get(kind="refresh").state == state
    event = AuditEvent.objects.get(action="session.refresh")
    assert event.outcome == ("unknown" if state == "unknown" else "failure")
