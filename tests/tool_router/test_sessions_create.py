"""The session service's create against the Composio emulator: write order, faults, lock, audit."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from sessions_app.composio import seam as composio_seam
from sessions_app.composio.emulator import Emulator
from sessions_app.models import (
    AuditEvent,
    EndUser,
    SessionOperation,
    SessionToolkit,
    Toolkit,
    ToolRouterSession,
)
from sessions_app.tool_router.sessions import tool_router_session_create


def test_create_stores_the_session_its_toolkits_and_one_audit_event(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    result = tool_router_session_create(
        end_user=alice, toolkits=["github", "gmail"], actor=session_admin
    )

    assert result.ok, result.message
    assert "usr_alice" in result.message
    (request,) = catalog.requests
    assert request.endpoint == "session.create"
    assert request.json["user_id"] == "usr_alice"
    assert request.json["toolkits"] == {"enable": ["github", "gmail"]}
    session = ToolRouterSession.objects.get(end_user=alice)
    assert session.status == "active" and session.session_id in catalog.sessions
    assert session.toolkits == ["github", "gmail"] and session.created_by == session_admin
    assert session.mcp_url == catalog.sessions[session.session_id]["mcp"]["url"]
    assert set(SessionToolkit.objects.values_list("toolkit__slug", flat=True)) == {
        "github",
        "gmail",
    }
    operation = SessionOperation.objects.get()
    assert operation.state == "succeeded" and operation.remote_session_id == session.session_id
    (event,) = AuditEvent.objects.exclude(action="catalog.sync")
    assert (event.action, event.outcome, event.session_ref) == (
        "session.create",
        "success",
        session.session_id,
    )
    assert session.mcp_url not in str(event.details) and "mcp_fingerprint" in event.details


@pytest.mark.usefixtures("alices_session")
def test_create_skips_a_user_who_already_has_a_session_and_says_to_refresh(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    result = tool_router_session_create(end_user=alice, toolkits=["gmail"], actor=session_admin)

    assert result.outcome == "skipped" and "use refresh" in result.message
    assert catalog.count("session.create") == 1
    assert ToolRouterSession.objects.count() == 1


@pytest.mark.parametrize(
    ("actor", "toolkits", "outcome", "fragment", "audited"),
    [
        pytest.param(
            "session_admin",
            ["github", "nosuchkit"],
            "failed",
            "nosuchkit",
            ("input.rejected", "rejected"),
            id="bad toolkits",
        ),
        pytest.param(
            "support_user",
            ["github"],
            "refused",
            "permission",
            ("access.refused", "refused"),
            id="no permission",
        ),
    ],
)
def test_a_create_turned_away_calls_nothing_writes_nothing_and_is_audited(
    catalog: Emulator,
    alice: EndUser,
    request: pytest.FixtureRequest,
    actor: str,
    toolkits: list[str],
    outcome: str,
    fragment: str,
    audited: tuple[str, str],
) -> None:
    result = tool_router_session_create(
        end_user=alice, toolkits=toolkits, actor=request.getfixturevalue(actor)
    )

    assert result.outcome == outcome and fragment in result.message
    assert catalog.requests == []
    assert not ToolRouterSession.objects.exists() and not SessionOperation.objects.exists()
    (event,) = AuditEvent.objects.exclude(action="catalog.sync")
    assert (event.action, event.outcome) == audited


@pytest.mark.parametrize(
    ("fault", "outcome", "audit_outcome", "fragment"),
    [
        (lambda e: e.faults.enqueue(400, endpoint="session.create"), "failed", "failure", "400"),
        (lambda e: e.faults.enqueue(401, endpoint="session.create"), "failed", "failure", "401"),
        (
            lambda e: e.faults.enqueue(429, endpoint="session.create", retry_after=7),
            "failed",
            "failure",
            "retry in 7 s",
        ),
        (lambda e: e.faults.enqueue(500, endpoint="session.create"), "unknown", "unknown", "500"),
        (
            lambda e: e.faults.malformed(endpoint="session.create"),
            "unknown",
            "unknown",
            "malformed",
        ),
        (lambda e: e.faults.drop(endpoint="session.create"), "unknown", "unknown", "connection"),
    ],
)
def test_a_failed_create_writes_no_session_and_records_the_outcome(
    catalog: Emulator,
    alice: EndUser,
    session_admin: User,
    fault,
    outcome: str,
    audit_outcome: str,
    fragment: str,
) -> None:
    fault(catalog)

    result = tool_router_session_create(end_user=alice, toolkits=["github"], actor=session_admin)

    assert result.outcome == outcome
    assert "usr_alice" in result.message and fragment in result.message
    assert catalog.count("session.create") == 1
    assert not ToolRouterSession.objects.exists()
    assert SessionOperation.objects.get().state == outcome
    (event,) = AuditEvent.objects.exclude(action="catalog.sync")
    assert (event.action, event.outcome) == ("session.create", audit_outcome)


def test_a_timeout_on_create_is_an_unknown_outcome(
    catalog: Emulator, alice: EndUser, session_admin: User, settings
) -> None:
    settings.COMPOSIO_READ_TIMEOUT = 0.3
    composio_seam.reset_client()
    catalog.faults.latency(1.0, endpoint="session.create")

    result = tool_router_session_create(end_user=alice, toolkits=["github"], actor=session_admin)

    assert result.outcome == "unknown" and "outcome is unknown" in result.message
    assert SessionOperation.objects.get().state == "unknown"


@pytest.mark.usefixtures("unreachable_composio")
def test_a_refused_connection_says_composio_is_unreachable(
    alice: EndUser, session_admin: User, db: None
) -> None:
    Toolkit.objects.create(slug="github", name="GitHub", is_allowed=True)

    result = tool_router_session_create(end_user=alice, toolkits=["github"], actor=session_admin)

    assert result.outcome == "failed" and "unreachable" in result.message
    assert SessionOperation.objects.get().state == "failed"
