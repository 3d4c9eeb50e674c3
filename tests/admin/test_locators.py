"""Locators in the admin (issue 12): a session id rebuilds the MCP URL, so the admin shows it in
full only to staff who may reveal MCP URLs (Support, Session admin, superuser) and masked
(`trs_…#<fingerprint>`) to the Auditor and to staff holding every other permission: in the
session, end-user, intent and audit-event lists and pages, the action pages and messages, and the
bulk job page. Its search is no oracle: for those staff a session id is matched whole, never by a
prefix or a substring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import pytest
from django.urls import reverse

from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, SessionOperation, ToolRouterSession
from sessions_app.tool_router import mcp_url
from sessions_app.tool_router.mcp_url import short_id
from tests.factories import admin_action, admin_action_confirmed, client_for
from tests.helpers import messages_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

MASKED = ("auditor", "no reveal")
FULL = ("support", "session admin", "superuser")


@dataclass(frozen=True)
class Page:
    """An admin page that names sessions: who may open it, and how a revealing role sees ids."""

    name: str
    view: str  # the admin's URL name, less "admin:sessions_app_"
    obj: Callable[[dict[str, Any]], int] | None  # the object's pk in the world, if a page of one
    named: tuple[str, ...]  # the world's sessions it names ("old", "new")
    openers: tuple[str, ...]  # the roles that may open it
    # How staff who may reveal see an id here ("short": its first 12 characters, "full"), or ""
    # where no id shows at all (titles and breadcrumbs name no session id for anyone).
    revealed: str = "full"

    def url(self, world: dict[str, Any]) -> str:
        args = [self.obj(world)] if self.obj else []
        return _admin(self.view, *args)


def _admin(view: str, *args: object) -> str:
    return reverse(f"admin:sessions_app_{view}", args=args)


def _old(world: dict[str, Any]) -> int:
    return world["old"].pk


def _new(world: dict[str, Any]) -> int:
    return world["new"].pk


def _end_user(world: dict[str, Any]) -> int:
    return world["end_user"].pk


def _bulk_job(world: dict[str, Any]) -> int:
    return world["ids"]["bulkjob"]


def _refresh_event(world: dict[str, Any]) -> int:
    return AuditEvent.objects.get(action="session.refresh", outcome="success").pk


def _refresh_intent(world: dict[str, Any]) -> int:
    return SessionOperation.objects.get(kind="refresh").pk


SESSION_VIEWERS = ("auditor", "no reveal", "support", "session admin", "superuser")
INTENT_VIEWERS = ("no reveal", "session admin", "superuser")
EVENT_VIEWERS = ("auditor", "no reveal", "superuser")
BOTH = ("old", "new")

# fmt: off
PAGES = [
    Page("session list", "toolroutersession_changelist", None, BOTH, SESSION_VIEWERS, "short"),
    Page("old session page", "toolroutersession_change", _old, BOTH, SESSION_VIEWERS),
    Page("new session page", "toolroutersession_change", _new, BOTH, SESSION_VIEWERS),
    Page("session history", "toolroutersession_history", _old, ("old",), SESSION_VIEWERS, ""),
    Page("end user list", "enduser_changelist", None, ("new",), SESSION_VIEWERS, "short"),
    Page("end user page", "enduser_change", _end_user, BOTH, SESSION_VIEWERS),
    Page("intent list", "sessionoperation_changelist", None, BOTH, INTENT_VIEWERS),
    Page("intent page", "sessionoperation_change", _refresh_intent, ("new",), INTENT_VIEWERS),
    Page("event list", "auditevent_changelist", None, BOTH, EVENT_VIEWERS),
    Page("event page", "auditevent_change", _refresh_event, BOTH, EVENT_VIEWERS),
    Page("bulk job page", "bulkjob_change", _bulk_job, ("old",), INTENT_VIEWERS, "short"),
]
# fmt: on
CASES = [
    pytest.param(surface, role, id=f"{surface.name}-{role}")
    for surface in PAGES
    for role in surface.openers
]


def assert_masked(body: str, session_id: str) -> None:
    """Neither the id nor its short form (nor its random tail) shows."""
    assert session_id not in body and session_id[4:12] not in body, session_id


# Not `page`: pytest-playwright's fixture of that name would make these browser tests.
@pytest.mark.parametrize(("surface", "role"), CASES)
def test_admin_pages_show_session_ids_only_to_staff_who_may_reveal(
    refreshed_world: dict[str, Any], surface: Page, role: str
) -> None:
    response = client_for(refreshed_world["users"][role]).get(surface.url(refreshed_world))

    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    for name in surface.named:
        session_id = refreshed_world[name].session_id
        if role in MASKED:
            assert_masked(body, session_id)
            if surface.revealed:
                assert mcp_url.masked_id_text(session_id) in body, (name, session_id)
        elif surface.revealed == "full":
            assert session_id in body, (name, session_id)
        elif surface.revealed == "short":
            assert session_id[:12] in body, (name, session_id)


def _listed(client: Any, view: str, q: str) -> int:
    response = client.get(_admin(view), {"q": q})
    assert response.status_code == HTTPStatus.OK
    return response.context["cl"].result_count


@pytest.mark.parametrize(
    ("view", "roles"),
    [
        ("toolroutersession_changelist", SESSION_VIEWERS),
        ("enduser_changelist", SESSION_VIEWERS),
        ("sessionoperation_changelist", INTENT_VIEWERS),
    ],
)
def test_admin_search_matches_a_session_id_whole_for_staff_who_may_not_reveal(
    refreshed_world: dict[str, Any], view: str, roles: tuple[str, ...]
) -> None:
    session_id = refreshed_world["new"].session_id
    probes = [session_id[:6], session_id[:-1], session_id[4:], session_id[5:12], "trs_"]

    for role in roles:
        client = client_for(refreshed_world["users"][role])
        # The whole id finds what it names, for everyone.
        assert _listed(client, view, session_id) == 1, role
        assert _listed(client, view, session_id.upper()) == 1, role
        for probe in probes:
            found = _listed(client, view, probe)
            if role in MASKED:
                assert found == 0, (role, probe)
            else:
                # Staff who may reveal keep the admin's substring search.
                assert found >= 1, (role, probe)


def test_the_session_list_offers_sorting_by_id_only_to_staff_who_may_reveal(
    refreshed_world: dict[str, Any],
) -> None:
    url = _admin("toolroutersession_changelist")
    auditor = client_for(refreshed_world["users"]["auditor"]).get(url).content.decode()
    support = client_for(refreshed_world["users"]["support"]).get(url).content.decode()

    assert 'class="sortable column-short_id' in support
    assert "column-short_id" in auditor and 'class="sortable column-short_id' not in auditor


@pytest.mark.parametrize("action", ["refresh_sessions", "delete_sessions"])
@pytest.mark.parametrize("role", ["no reveal", "session admin"])
def test_the_session_action_pages_name_the_active_session_as_the_user_may_see_it(
    refreshed_world: dict[str, Any], action: str, role: str
) -> None:
    client = client_for(refreshed_world["users"][role])
    session_id = refreshed_world["new"].session_id

    body = admin_action(client, action, [refreshed_world["end_user"]]).content.decode()

    if role in MASKED:
        assert_masked(body, session_id)
        assert mcp_url.masked_id_text(session_id) in body
    else:
        assert session_id[:12] in body


@pytest.mark.parametrize("role", ["no reveal", "session admin"])
def test_the_result_messages_of_a_session_action_name_sessions_as_the_user_may_see_them(
    refreshed_world: dict[str, Any], role: str
) -> None:
    client = client_for(refreshed_world["users"][role])
    before = refreshed_world["new"]

    response = admin_action_confirmed(
        client, "refresh_sessions", [refreshed_world["end_user"]], ["github"]
    )

    after = ToolRouterSession.objects.get(end_user=refreshed_world["end_user"], status="active")
    assert after.pk != before.pk
    said = " ".join(messages_of(response))
    assert "Refreshed the session of usr_access" in said
    if role in MASKED:
        for session_id in (before.session_id, after.session_id):
            assert_masked(said, session_id)
        assert mcp_url.masked_id_text(after.session_id) in said
    else:
        assert short_id(after.session_id) in said


@pytest.mark.parametrize("role", ["no reveal", "session admin"])
def test_the_retry_deletes_messages_name_sessions_as_the_user_may_see_them(
    refreshed_world: dict[str, Any], emulator: Emulator, role: str
) -> None:
    old = refreshed_world["old"]
    ToolRouterSession.objects.filter(pk=old.pk).update(
        remote_deleted_at=None, remote_delete_error="Composio failed with HTTP 500"
    )
    emulator.faults.enqueue(500, endpoint="session.delete", times=10)

    response = client_for(refreshed_world["users"][role]).post(
        _admin("toolroutersession_changelist"),
        {"action": "retry_remote_deletes", "_selected_action": [old.pk], "index": "0"},
        follow=True,
    )

    said = messages_of(response)
    assert "Deleted 0 superseded sessions at Composio; 1 still failing." in said
    if role in MASKED:
        assert_masked(" ".join(said), old.session_id)
        assert any(m.startswith(mcp_url.masked_id_text(old.session_id) + ": ") for m in said)
    else:
        assert any(m.startswith(old.session_id + ": ") for m in said)
