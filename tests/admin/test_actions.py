"""The session actions of the end-user admin: both steps, via the test client and the emulator."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sessions_app.composio import seam as composio_seam
from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, SessionOperation, Toolkit, ToolRouterSession
from tests.factories import (
    ALLOWED,
    ENDUSER_CHANGELIST,
    admin_action,
    admin_action_confirmed,
    give_session,
    make_end_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(db: None) -> list[EndUser]:
    return [make_end_user(f"usr_{n}", f"User {n}") for n in (1, 2, 3)]


def url() -> str:
    return reverse(ENDUSER_CHANGELIST)


def shown(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- create ------------------------------------------------------------------------------------


def test_create_action_shows_the_intermediate_page_with_the_users_and_allowed_toolkits(
    session_admin_client: Client, catalog: Emulator, users: list[EndUser]
) -> None:
    response = admin_action(session_admin_client, "create_sessions", users[:2])

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "2 end users selected" in html and "usr_1" in html and "usr_2" in html
    for slug in ALLOWED:
        assert f'name="toolkits" value="{slug}"' in html
    assert 'value="jira"' not in html  # in the catalog but not allowed
    assert 'name="post" value="yes"' in html and 'name="action" value="create_sessions"' in html
    assert html.count('name="_selected_action"') == 2
    assert 'id="toolkit-filter"' in html and "admin_toolkits.js" in html
    assert catalog.requests == []


def test_create_action_creates_one_session_per_user_with_the_chosen_toolkits(
    session_admin_client: Client, catalog: Emulator, users: list[EndUser]
) -> None:
    response = admin_action_confirmed(
        session_admin_client, "create_sessions", users, ["github", "slack"]
    )

    assert response.status_code == HTTPStatus.OK
    assert "3 end users: 3 succeeded." in shown(response)
    creates = [r for r in catalog.requests if r.endpoint == "session.create"]
    assert sorted(r.json["user_id"] for r in creates) == ["usr_1", "usr_2", "usr_3"]
    assert all(r.json["toolkits"] == {"enable": ["github", "slack"]} for r in creates)
    assert ToolRouterSession.objects.filter(status="active").count() == 3
    assert AuditEvent.objects.filter(action="session.create", outcome="success").count() == 3


def test_create_action_across_all_pages_uses_the_whole_queryset(
    session_admin_client: Client, catalog: Emulator, users: list[EndUser]
) -> None:
    response = admin_action(session_admin_client, "create_sessions", users[:1], select_across="1")
    assert "3 end users selected" in response.content.decode()
    assert 'name="select_across" value="1"' in response.content.decode()

    response = admin_action_confirmed(
        session_admin_client, "create_sessions", users[:1], ["gmail"], select_across="1"
    )

    assert "3 end users: 3 succeeded." in shown(response)
    assert catalog.count("session.create") == 3


def test_create_action_skips_users_with_a_session_and_says_to_refresh(
    session_admin_client: Client, catalog: Emulator, users: list[EndUser], session_admin: User
) -> None:
    give_session(users[0], ["github"], session_admin)
    catalog.reset()

    response = admin_action_confirmed(session_admin_client, "create_sessions", users[:2], ["gmail"])

    messages = shown(response)
    assert "2 end users: 1 skipped, 1 succeeded." in messages
    assert any("usr_1" in m and "use refresh" in m for m in messages)
    assert catalog.count("session.create") == 1


@pytest.mark.parametrize(
    ("toolkits", "fragment"),
    [
        (["nosuchkit"], "Not in Composio&#x27;s toolkit catalog: &#x27;nosuchkit&#x27;"),
        (["jira"], "Not on the allow-list: jira"),
        (["GitHub"], "lower-case"),
        (["github", "github"], "chosen more than once: github"),
        ([], "Choose at least one toolkit"),
    ],
)
def test_a_bad_toolkit_choice_gets_a_form_error_an_audit_event_and_no_call(
    session_admin_client: Client, catalog: Emulator, users: list[EndUser], toolkits, fragment: str
) -> None:
    response = admin_action_confirmed(
        session_admin_client, "create_sessions", users[:1], toolkits, follow=False
    )

    assert response.status_code == HTTPStatus.OK
    assert fragment in response.content.decode()
    assert catalog.requests == []
    assert not ToolRouterSession.objects.exists() and not SessionOperation.objects.exists()
    event = AuditEvent.objects.get(action="input.rejected")
    assert event.outcome == "rejected" and event.details["operation"] == "create"


def test_a_crafted_unknown_slug_is_flagged_as_crafted(
    session_admin_client: Client, catalog: Emulator, users: list[EndUser]
) -> None:
    admin_action_confirmed(
        session_admin_client, "create_sessions", users[:1], ["github", "evil_kit"]
    )

    event = AuditEvent.objects.get(action="input.rejected")
    assert event.details["crafted"] is True and "evil_kit" in event.details["toolkits"]
    assert catalog.requests == []


def test_too_many_toolkits_are_refused(
    session_admin_client: Client, catalog: Emulator, users: list[EndUser], settings
) -> None:
    settings.TOOL_ROUTER_MAX_TOOLKITS = 2
    response = admin_action_confirmed(
        session_admin_client,
        "create_sessions",
        users[:1],
        ["github", "gmail", "slack"],
        follow=False,
    )
    assert "at most 2" in response.content.decode()
    assert catalog.requests == []


def test_a_selection_over_the_limit_is_refused_with_a_message(
    session_admin_client: Client, catalog: Emulator, users: list[EndUser], settings
) -> None:
    # Create and refresh hand big selections to a background job (tests/bulk/test_views.py);
    # changing toolkits in place has no job and stays limited.
    settings.TOOL_ROUTER_SYNC_LIMIT = 2

    response = admin_action(session_admin_client, "change_session_toolkits", users)

    assert response.status_code == HTTPStatus.FOUND
    response = session_admin_client.get(response.url)
    assert any("at most 2 at a time" in m for m in shown(response))
    assert catalog.requests == []


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
    users: list[EndUser],
    session_admin: User,
    settings,
    name: str,
    fault,
    state: str,
    fragment: str,
) -> None:
    old = give_session(users[0], ["github"], session_admin)
    catalog.reset()
    settings.COMPOSIO_READ_TIMEOUT = 0.3
    composio_seam.reset_client()
    fault(catalog)

    response = admin_action_confirmed(
        session_admin_client, "refresh_sessions", users[:1], ["gmail"]
    )

    messages = shown(response)
    assert any("usr_1" in m and fragment in m for m in messages), messages
    assert catalog.count("session.create") == 1 and catalog.count("session.delete") == 0
    old.refresh_from_db()
    assert old.status == "active"
    assert ToolRouterSession.objects.count() == 1
    assert SessionOperation.objects.get(kind="refresh").state == state
    event = AuditEvent.objects.get(action="session.refresh")
    assert event.outcome == ("unknown" if state == "unknown" else "failure")


@pytest.mark.usefixtures("unreachable_composio")
def test_a_refused_connection_says_composio_is_unreachable(
    session_admin_client: Client, users: list[EndUser], session_admin: User
) -> None:
    Toolkit.objects.create(slug="github", name="GitHub", is_allowed=True)

    response = admin_action_confirmed(
        session_admin_client, "create_sessions", users[:1], ["github"]
    )

    assert any("usr_1" in m and "unreachable" in m for m in shown(response))
    assert not ToolRouterSession.objects.exists()
    assert AuditEvent.objects.get(action="session.create").outcome == "failure"


# --- refresh, change, delete -------------------------------------------------------------------


def test_refresh_action_preselects_the_current_toolkits(
    session_admin_client: Client, catalog: Emulator, users: list[EndUser], session_admin: User
) -> None:
    give_session(users[0], ["github", "notion"], session_admin)

    html = admin_action(session_admin_client, "refresh_sessions", users[:1]).content.decode()

    assert 'value="github" checked' in html and 'value="notion" checked' in html
    assert 'value="gmail" checked' not in html


def test_refresh_action_replaces_the_session_and_deletes_the_old_one(
    session_admin_client: Client, catalog: Emulator, users: list[EndUser], session_admin: User
) -> None:
    old = give_session(users[0], ["github"], session_admin)
    catalog.reset()

    response = admin_action_confirmed(
        session_admin_client, "refresh_sessions", users[:1], ["github", "gmail"]
    )

    assert any("Refreshed the session of usr_1" in m for m in shown(response))
    assert [r.endpoint for r in catalog.requests] == ["session.create", "session.delete"]
    assert catalog.requests[0].json["toolkits"] == {"enable": ["github", "gmail"]}
    assert catalog.requests[1].path.endswith(old.session_id)
    new = ToolRouterSession.objects.get(status="active")
    assert new.replaces == old and new.session_id != old.session_id
    old.refresh_from_db()
    assert old.status == "superseded" and old.remote_deleted_at is not None


def test_refresh_action_can_keep_each_users_current_toolkits(
    session_admin_client: Client, catalog: Emulator, users: list[EndUser], session_admin: User
) -> None:
    give_session(users[0], ["github"], session_admin)
    give_session(users[1], ["slack", "notion"], session_admin)
    catalog.reset()

    response = admin_action_confirmed(
        session_admin_client, "refresh_sessions", users[:2], [], keep_current="on"
    )

    assert "2 end users: 2 succeeded." in shown(response)
    sent = {r.json["user_id"]: r.json["toolkits"] for r in catalog.requests if r.json}
    assert sent == {"usr_1": {"enable": ["github"]}, "usr_2": {"enable": ["slack", "notion"]}}


def test_change_toolkits_action_keeps_the_session_id(
    session_admin_client: Client, catalog: Emulator, users: list[EndUser], session_admin: User
) -> None:
    session = give_session(users[0], ["github"], session_admin)

    response = admin_action_confirmed(
        session_admin_client, "change_session_toolkits", users[:2], ["gmail"]
    )

    messages = shown(response)
    assert "2 end users: 1 succeeded, 1 skipped." in messages
    assert any("usr_2" in m and "no active session" in m for m in messages)
    session.refresh_from_db()
    assert session.status == "active" and session.toolkits == ["gmail"]
    assert ToolRouterSession.objects.count() == 1


def test_change_toolkits_conflict_tells_the_admin_to_reload(
    session_admin_client: Client, catalog: Emulator, users: list[EndUser], session_admin: User
) -> None:
    give_session(users[0], ["github"], session_admin)
    catalog.faults.enqueue(409, endpoint="session.update")

    response = admin_action_confirmed(
        session_admin_client, "change_session_toolkits", users[:1], ["gmail"]
    )

    assert any("usr_1" in m and "Someone else changed" in m for m in shown(response))
    assert ToolRouterSession.objects.get().toolkits == ["github"]


def test_delete_action_confirms_then_deletes_at_composio_and_keeps_the_row(
    session_admin_client: Client, catalog: Emulator, users: list[EndUser], session_admin: User
) -> None:
    session = give_session(users[0], ["github"], session_admin)

    confirm = admin_action(session_admin_client, "delete_sessions", users[:2])
    assert confirm.status_code == HTTPStatus.OK
    html = confirm.content.decode()
    assert "Are you sure?" in html and session.short_id in html and "no active session" in html
    assert catalog.count("session.delete") == 0

    response = admin_action_confirmed(session_admin_client, "delete_sessions", users[:1])

    assert any("Deleted session" in m and "usr_1" in m for m in shown(response))
    assert catalog.count("session.delete") == 1
    session.refresh_from_db()
    assert session.status == "deleted"


# --- permissions -------------------------------------------------------------------------------


NEEDS = {
    "create_sessions": "sessions_app.create_session",
    "refresh_sessions": "sessions_app.refresh_session",
    "change_session_toolkits": "sessions_app.change_session_toolkits",
    "delete_sessions": "sessions_app.delete_session",
}


@pytest.mark.parametrize("action", sorted(NEEDS))
def test_actions_are_hidden_from_support_and_refused_if_posted(
    client: Client, support_user: User, catalog: Emulator, users: list[EndUser], action: str
) -> None:
    client.force_login(support_user)

    page = client.get(url())
    assert page.status_code == HTTPStatus.OK
    assert f'value="{action}"' not in page.content.decode()

    response = admin_action_confirmed(client, action, users[:1], ["github"])

    assert "You do not have permission to run that action." in shown(response)
    assert catalog.requests == []
    assert not ToolRouterSession.objects.exists()
    event = AuditEvent.objects.get(action="access.refused")
    assert event.outcome == "refused"
    assert event.details["operation"] == f"admin.enduser.{action}"
    assert event.details["missing"] == [NEEDS[action]]


def test_session_admin_sees_every_session_action(session_admin_client: Client, users) -> None:
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
