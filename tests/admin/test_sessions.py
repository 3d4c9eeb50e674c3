"""The session, end-user and intent admins: read-only, MCP URL masked, history, search, filters."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sessions_app.composio.emulator import Emulator
from sessions_app.models import EndUser, ToolRouterSession
from sessions_app.tool_router import mcp_url, sessions
from sessions_app.tool_router.mcp_url import short_id
from tests.factories import give_session, make_end_user
from tests.helpers import messages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(catalog: Emulator, session_admin: User) -> tuple[ToolRouterSession, ToolRouterSession]:
    """usr_1's session refreshed once: (old, new)."""
    alice = make_end_user("usr_1", email="alice@example.com")
    make_end_user("usr_2")
    old = give_session(alice, ["github"], session_admin)
    new = sessions.tool_router_session_refresh(
        end_user=alice, toolkits=["gmail"], actor=session_admin
    ).session
    assert new is not None
    old.refresh_from_db()
    return old, new


def session_list() -> str:
    return reverse("admin:sessions_app_toolroutersession_changelist")


def test_the_session_list_masks_the_mcp_url(session_admin_client: Client, history) -> None:
    old, new = history

    html = session_admin_client.get(session_list()).content.decode()

    assert short_id(new.session_id) in html and short_id(old.session_id) in html
    assert new.mcp_url not in html and old.mcp_url not in html
    assert str(mcp_url.mask(new.mcp_url)) in html
    assert new.mcp_url not in str(new)


def test_the_session_page_is_read_only_masked_and_shows_what_replaced_it(
    session_admin_client: Client, history
) -> None:
    old, new = history

    response = session_admin_client.get(
        reverse("admin:sessions_app_toolroutersession_change", args=[old.pk])
    )

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert old.mcp_url not in html and new.session_id in html
    assert 'name="mcp_url"' not in html and 'type="submit" value="Save"' not in html


def test_searching_sessions_by_the_mcp_url_finds_nothing(
    session_admin_client: Client, history
) -> None:
    _, new = history

    by_url = session_admin_client.get(session_list(), {"q": new.mcp_url.rsplit("/", 2)[-2]})
    by_id = session_admin_client.get(session_list(), {"q": new.session_id})

    # The session id is part of the URL, so searching the id works; the URL itself is not searched.
    assert by_id.context["cl"].result_count == 1
    assert (
        session_admin_client.get(session_list(), {"q": new.mcp_url}).context["cl"].result_count == 0
    )
    assert by_url.status_code == HTTPStatus.OK


def test_sessions_filter_by_status_and_toolkit(session_admin_client: Client, history) -> None:
    old, new = history

    active = session_admin_client.get(session_list(), {"status__exact": "active"}).context["cl"]
    github = session_admin_client.get(session_list(), {"toolkit": "github"}).context["cl"]

    assert [s.pk for s in active.result_list] == [new.pk]
    assert [s.pk for s in github.result_list] == [old.pk]


def test_the_end_user_list_shows_the_active_session_and_filters(
    session_admin_client: Client, history
) -> None:
    _, new = history
    url = reverse("admin:sessions_app_enduser_changelist")

    html = session_admin_client.get(url).content.decode()
    assert short_id(new.session_id) in html and "gmail" in html and new.mcp_url not in html

    def listed(**params: str) -> list[str]:
        return [
            u.external_id for u in session_admin_client.get(url, params).context["cl"].result_list
        ]

    assert listed(has_session="yes") == ["usr_1"]
    assert listed(has_session="no") == ["usr_2"]
    assert listed(toolkit="gmail") == ["usr_1"]
    assert listed(toolkit="github") == []
    assert listed(q=new.session_id) == ["usr_1"]
    assert listed(q="alice@example") == ["usr_1"]


def test_the_end_user_page_shows_the_session_history_masked(
    session_admin_client: Client, history
) -> None:
    old, new = history

    response = session_admin_client.get(
        reverse("admin:sessions_app_enduser_change", args=[new.end_user.pk])
    )

    html = response.content.decode()
    assert "Session history" in html and old.session_id in html and new.session_id in html
    assert "superseded" in html.lower() and "ada_admin" in html
    assert old.mcp_url not in html and new.mcp_url not in html
    # The external id is Composio's user id: fixed once a session exists.
    assert 'name="external_id"' not in html


def test_adding_an_end_user_uses_the_shared_validator(
    session_admin_client: Client, db: None
) -> None:
    url = reverse("admin:sessions_app_enduser_add")

    response = session_admin_client.post(
        url, {"external_id": "DEFAULT", "display_name": "", "email": ""}
    )

    assert response.status_code == HTTPStatus.OK
    assert "shared user id" in response.content.decode()
    assert not EndUser.objects.exists()

    session_admin_client.post(url, {"external_id": "usr_9", "display_name": "Nine", "email": ""})
    assert EndUser.objects.filter(external_id="usr_9").exists()


@pytest.mark.parametrize(
    "name",
    ["toolroutersession", "enduser", "toolkit", "sessionoperation"],
)
def test_admin_lists_need_a_login_and_a_role(
    client: Client, outsider: User, session_admin: User, name: str
) -> None:
    url = reverse(f"admin:sessions_app_{name}_changelist")
    response = client.get(url)
    assert response.status_code == HTTPStatus.FOUND and "login" in response.url

    client.force_login(outsider)
    assert client.get(url).status_code == HTTPStatus.FORBIDDEN

    client.force_login(session_admin)
    assert client.get(url).status_code == HTTPStatus.OK


def test_retry_action_deletes_superseded_sessions_whose_delete_failed(
    session_admin_client: Client, history, emulator: Emulator
) -> None:
    old, _ = history
    emulator.reset()  # forget sessions so the next delete answers 404, counted as gone
    ToolRouterSession.objects.filter(pk=old.pk).update(
        remote_deleted_at=None, remote_delete_error="Composio failed with HTTP 500"
    )

    response = session_admin_client.post(
        session_list(),
        {"action": "retry_remote_deletes", "_selected_action": [old.pk], "index": "0"},
        follow=True,
    )

    # One session: the singular, and the deleted session's short id linked to its user's card.
    card = reverse("sessions_app:support_user_card", args=[old.end_user.public_id])
    assert (
        f'Deleted 1 superseded session at Composio: <a href="{card}" class="mono">'
        f"{short_id(old.session_id)}</a> ({old.end_user.external_id}); 0 still failing."
    ) in messages_of(response)
    assert "Deleted 1 superseded session at Composio: <a" in response.content.decode()
    old.refresh_from_db()
    assert old.remote_deleted_at is not None and old.remote_delete_error == ""
    assert emulator.count("session.delete") == 1


def test_retry_action_is_refused_to_support(
    client: Client, support_user: User, history, emulator: Emulator
) -> None:
    client.force_login(support_user)
    old, _ = history
    emulator.reset()

    client.post(
        session_list(),
        {"action": "retry_remote_deletes", "_selected_action": [old.pk], "index": "0"},
    )

    assert emulator.requests == []


def test_an_over_long_external_id_is_refused_with_its_limit_never_cut(
    session_admin_client: Client, db: None
) -> None:
    url = reverse("admin:sessions_app_enduser_add")
    # No maxlength on the inputs: a browser would cut a pasted 300-character id to 128 silently.
    assert "maxlength" not in session_admin_client.get(url).content.decode()

    response = session_admin_client.post(
        url, {"external_id": "x" * 300, "display_name": "", "email": ""}
    )

    assert response.status_code == HTTPStatus.OK
    assert "at most 128 characters (it has 300)" in response.content.decode()
    assert not EndUser.objects.exists()
