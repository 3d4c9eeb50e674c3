"""The session service's toolkit change and delete against the Composio emulator."""

from __future__ import annotations

from http import HTTPStatus

from django.contrib.auth.models import User

from sessions_app.composio.emulator import Emulator
from sessions_app.models import ToolRouterSession
from sessions_app.tool_router import sessions
from tests.helpers import audit_events


def test_change_toolkits_keeps_the_session_id_and_url(
    catalog: Emulator, alices_session: ToolRouterSession, session_admin: User
) -> None:
    result = sessions.tool_router_session_change_toolkits(
        session=alices_session, toolkits=["github", "notion"], actor=session_admin
    )

    assert result.ok, result.message
    alices_session.refresh_from_db()
    assert alices_session.toolkits == ["github", "notion"] and alices_session.config_version == 2
    assert catalog.sessions[alices_session.session_id]["config"]["toolkits"] == {
        "enabled": ["github", "notion"]
    }
    patch = [r for r in catalog.requests if r.endpoint == "session.update"][0]
    assert patch.json["expected_config_version"] == 1
    assert ToolRouterSession.objects.count() == 1


def test_change_toolkits_conflict_says_someone_else_changed_it(
    catalog: Emulator, alices_session: ToolRouterSession, session_admin: User
) -> None:
    ToolRouterSession.objects.filter(pk=alices_session.pk).update(config_version=7)
    alices_session.refresh_from_db()

    result = sessions.tool_router_session_change_toolkits(
        session=alices_session, toolkits=["gmail"], actor=session_admin
    )

    assert result.outcome == "failed"
    assert "Someone else changed" in result.message and "reload" in result.message
    alices_session.refresh_from_db()
    assert alices_session.toolkits == ["github"]
    assert catalog.sessions[alices_session.session_id]["config"]["toolkits"] == {
        "enabled": ["github"]
    }


def test_delete_removes_the_session_at_composio_and_keeps_the_row(
    catalog: Emulator, alices_session: ToolRouterSession, session_admin: User
) -> None:
    result = sessions.tool_router_session_delete(session=alices_session, actor=session_admin)

    assert result.ok, result.message
    alices_session.refresh_from_db()
    assert alices_session.status == "deleted" and alices_session.deleted_at is not None
    assert alices_session.session_id not in catalog.sessions
    assert [e.outcome for e in audit_events("session.delete")] == ["success"]


def test_delete_of_a_session_composio_lost_still_marks_it_deleted(
    catalog: Emulator, alices_session: ToolRouterSession, session_admin: User
) -> None:
    catalog.reset()

    result = sessions.tool_router_session_delete(session=alices_session, actor=session_admin)

    assert result.ok and "no longer knew it" in result.message
    assert ToolRouterSession.objects.get().status == "deleted"


def test_a_failed_delete_leaves_the_session_active(
    catalog: Emulator, alices_session: ToolRouterSession, session_admin: User
) -> None:
    catalog.faults.enqueue(403, endpoint="session.delete")

    result = sessions.tool_router_session_delete(session=alices_session, actor=session_admin)

    assert result.outcome == "failed" and "403" in result.message
    assert ToolRouterSession.objects.get().status == "active"
    assert HTTPStatus.FORBIDDEN == 403
