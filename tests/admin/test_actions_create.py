"""The end-user admin's create action, both steps, via the test client and the emulator: the
intermediate page, sessions made, skipped users, refused toolkit choices and selections."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.test import Client

from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, SessionOperation, Toolkit, ToolRouterSession
from tests.factories import ALLOWED, admin_action, admin_action_confirmed, give_session
from tests.helpers import messages_of

pytestmark = pytest.mark.django_db


def test_create_action_shows_the_intermediate_page_with_the_users_and_allowed_toolkits(
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser]
) -> None:
    response = admin_action(session_admin_client, "create_sessions", end_users[:2])

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
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser]
) -> None:
    response = admin_action_confirmed(
        session_admin_client, "create_sessions", end_users, ["github", "slack"]
    )

    assert response.status_code == HTTPStatus.OK
    assert "3 end users: 3 succeeded." in messages_of(response)
    creates = [r for r in catalog.requests if r.endpoint == "session.create"]
    assert sorted(r.json["user_id"] for r in creates) == ["usr_1", "usr_2", "usr_3"]
    assert all(r.json["toolkits"] == {"enable": ["github", "slack"]} for r in creates)
    assert ToolRouterSession.objects.filter(status="active").count() == 3
    assert AuditEvent.objects.filter(action="session.create", outcome="success").count() == 3


def test_create_action_across_all_pages_uses_the_whole_queryset(
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser]
) -> None:
    response = admin_action(
        session_admin_client, "create_sessions", end_users[:1], select_across="1"
    )
    assert "3 end users selected" in response.content.decode()
    assert 'name="select_across" value="1"' in response.content.decode()

    response = admin_action_confirmed(
        session_admin_client, "create_sessions", end_users[:1], ["gmail"], select_across="1"
    )

    assert "3 end users: 3 succeeded." in messages_of(response)
    assert catalog.count("session.create") == 3


def test_create_action_skips_users_with_a_session_and_says_to_refresh(
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser], session_admin: User
) -> None:
    give_session(end_users[0], ["github"], session_admin)
    catalog.reset()

    response = admin_action_confirmed(
        session_admin_client, "create_sessions", end_users[:2], ["gmail"]
    )

    messages = messages_of(response)
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
    session_admin_client: Client,
    catalog: Emulator,
    end_users: list[EndUser],
    toolkits,
    fragment: str,
) -> None:
    response = admin_action_confirmed(
        session_admin_client, "create_sessions", end_users[:1], toolkits, follow=False
    )

    assert response.status_code == HTTPStatus.OK
    assert fragment in response.content.decode()
    assert catalog.requests == []
    assert not ToolRouterSession.objects.exists() and not SessionOperation.objects.exists()
    event = AuditEvent.objects.get(action="input.rejected")
    assert event.outcome == "rejected" and event.details["operation"] == "create"


def test_a_crafted_unknown_slug_is_flagged_as_crafted(
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser]
) -> None:
    admin_action_confirmed(
        session_admin_client, "create_sessions", end_users[:1], ["github", "evil_kit"]
    )

    event = AuditEvent.objects.get(action="input.rejected")
    assert event.details["crafted"] is True and "evil_kit" in event.details["toolkits"]
    assert catalog.requests == []


def test_too_many_toolkits_are_refused(
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser], settings
) -> None:
    settings.TOOL_ROUTER_MAX_TOOLKITS = 2
    response = admin_action_confirmed(
        session_admin_client,
        "create_sessions",
        end_users[:1],
        ["github", "gmail", "slack"],
        follow=False,
    )
    assert "at most 2" in response.content.decode()
    assert catalog.requests == []


def test_a_selection_over_the_limit_is_refused_with_a_message(
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser], settings
) -> None:
    # Create and refresh hand big selections to a background job (tests/bulk/test_views.py);
    # changing toolkits in place has no job and stays limited.
    settings.TOOL_ROUTER_SYNC_LIMIT = 2

    response = admin_action(session_admin_client, "change_session_toolkits", end_users)

    assert response.status_code == HTTPStatus.FOUND
    response = session_admin_client.get(response.url)
    assert any("at most 2 at a time" in m for m in messages_of(response))
    assert catalog.requests == []


@pytest.mark.usefixtures("unreachable_composio")
def test_a_refused_connection_says_composio_is_unreachable(
    session_admin_client: Client, end_users: list[EndUser], session_admin: User
) -> None:
    Toolkit.objects.create(slug="github", name="GitHub", is_allowed=True)

    response = admin_action_confirmed(
        session_admin_client, "create_sessions", end_users[:1], ["github"]
    )

    assert any("usr_1" in m and "unreachable" in m for m in messages_of(response))
    assert not ToolRouterSession.objects.exists()
    assert AuditEvent.objects.get(action="session.create").outcome == "failure"


def test_a_single_end_user_reads_in_the_singular(
    session_admin_client: Client, catalog: Emulator, alice: EndUser
) -> None:
    response = admin_action_confirmed(session_admin_client, "create_sessions", [alice], ["github"])

    assert "1 end user: 1 succeeded." in messages_of(response)
