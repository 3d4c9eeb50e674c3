"""Each auditable action writes exactly one event, with every required field and no secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus

import pytest
from django.urls import reverse

from sessions_app.models import AuditEvent, EndUser, ToolRouterSession
from sessions_app.tool_router import sessions, toolkit_catalog
from tests.factories import client_for, give_session, make_end_user

API_KEY = "sk-SENTINEL-KEY-FOR-AUDIT"
IP = "10.1.2.3"


@pytest.fixture
def world(catalog, session_admin, support_user):
    """A synced, partly allowed catalog and one end user with an active session."""
    alice = make_end_user("alice")
    return {
        "alice": alice,
        "session": give_session(alice, ["github"], session_admin),
        "admin": session_admin,
        "support": support_user,
    }


def _catalog_sync(world) -> tuple[str, str]:
    toolkit_catalog.toolkit_catalog_sync(actor=world["admin"])
    return "catalog.sync", "success"


def _login(world) -> tuple[str, str]:
    response = client_for(None, REMOTE_ADDR=IP).post(
        reverse("login"), {"login": "sam_support", "password": "pw-sam_support"}
    )
    assert response.status_code == HTTPStatus.FOUND
    return "auth.login", "success"


def _login_failed(world) -> tuple[str, str]:
    response = client_for(None, REMOTE_ADDR=IP).post(
        reverse("login"), {"login": "sam_support", "password": "wrong"}
    )
    assert response.status_code == HTTPStatus.OK
    return "auth.login_failed", "failure"


def _logout(world) -> tuple[str, str]:
    client = client_for(world["support"], REMOTE_ADDR=IP)
    assert client.post(reverse("logout")).status_code == HTTPStatus.FOUND
    return "auth.logout", "success"


def _create_for_bob(world, toolkits: list[str], actor: str = "admin") -> sessions.SessionResult:
    """A session create for a new end user, bob, by the world's admin (or its support user)."""
    bob = EndUser.objects.create(external_id="bob")
    return sessions.tool_router_session_create(end_user=bob, toolkits=toolkits, actor=world[actor])


def _session_create(world) -> tuple[str, str]:
    assert _create_for_bob(world, ["slack"]).ok
    return "session.create", "success"


def _session_create_failed(world, emulator) -> tuple[str, str]:
    emulator.faults.enqueue(400, endpoint="session.create", times=1)
    assert not _create_for_bob(world, ["slack"]).ok
    return "session.create", "failure"


def _session_refresh(world) -> tuple[str, str]:
    result = sessions.tool_router_session_refresh(
        end_user=world["alice"], toolkits=["github", "gmail"], actor=world["admin"]
    )
    assert result.ok, result.message
    return "session.refresh", "success"


def _session_change(world) -> tuple[str, str]:
    result = sessions.tool_router_session_change_toolkits(
        session=world["session"], toolkits=["slack"], actor=world["admin"]
    )
    assert result.ok, result.message
    return "session.change_toolkits", "success"


def _session_delete(world) -> tuple[str, str]:
    assert sessions.tool_router_session_delete(session=world["session"], actor=world["admin"]).ok
    return "session.delete", "success"


def _rejected_input(world) -> tuple[str, str]:
    assert not _create_for_bob(world, ["no-such-toolkit"]).ok
    return "input.rejected", "rejected"


def _reveal(world) -> tuple[str, str]:
    url = reverse("sessions_app:support_mcp_reveal", args=[world["session"].public_id])
    assert client_for(world["support"], REMOTE_ADDR=IP).post(url).status_code == HTTPStatus.OK
    return "mcp_url.reveal", "success"


def _refused_view(world) -> tuple[str, str]:
    assert (
        client_for(world["support"], REMOTE_ADDR=IP).get(reverse("audit:access")).status_code
        == HTTPStatus.FORBIDDEN
    )
    return "access.refused", "refused"


def _refused_service(world) -> tuple[str, str]:
    assert not _create_for_bob(world, ["slack"], "support").ok
    return "access.refused", "refused"


ACTIONS: list[Callable] = [
    _catalog_sync,
    _login,
    _login_failed,
    _logout,
    _session_create,
    _session_create_failed,
    _session_refresh,
    _session_change,
    _session_delete,
    _rejected_input,
    _reveal,
    _refused_view,
    _refused_service,
]


@pytest.mark.django_db
@pytest.mark.parametrize("act", ACTIONS, ids=lambda f: f.__name__.lstrip("_"))
def test_each_auditable_action_writes_exactly_one_complete_event(
    act, world, emulator, settings
) -> None:
    settings.COMPOSIO_API_KEY = ""  # emulated; the sentinel below is searched for anyway
    last = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    args = (world, emulator) if act is _session_create_failed else (world,)
    action, outcome = act(*args)
    new = list(
        AuditEvent.objects.filter(sequence__gt=last)
        .exclude(action="auth.login")
        .order_by("sequence")
    )
    if action == "auth.login":
        new = list(AuditEvent.objects.filter(sequence__gt=last).order_by("sequence"))
    assert [(e.action, e.outcome) for e in new] == [(action, outcome)]
    (event,) = new
    assert event.created_at is not None and event.sequence > last
    assert len(event.row_hash) == 64 and len(event.prev_hash) == 64
    if action not in ("auth.login_failed", "catalog.sync") or event.actor_id:
        assert event.actor_username in {"ada_admin", "sam_support"}
    if action.startswith(("session.", "mcp_url.", "input.")) or act is _refused_service:
        assert event.end_user_external_id in {"alice", "bob"}
    if (
        action
        in (
            "auth.login",
            "auth.login_failed",
            "auth.logout",
            "mcp_url.reveal",
            "access.refused",
        )
        and act is not _refused_service
    ):
        assert event.ip_address == IP and event.request_id
    if outcome != "success":
        assert event.reason
    stored = json.dumps(
        {f.attname: str(getattr(event, f.attname)) for f in AuditEvent._meta.fields}
    )
    for session in ToolRouterSession.objects.all():
        assert session.mcp_url not in stored
    assert "pw-sam_support" not in stored and "wrong" not in stored.replace("Wrong", "")
    assert "headers" not in stored and API_KEY not in stored
