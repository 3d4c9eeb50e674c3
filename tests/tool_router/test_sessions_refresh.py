"""The session service's refresh against the Composio emulator: the replacement, the old
session's delete at Composio and its retry, failures, and the per-user lock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User

from sessions_app.composio.emulator import Emulator
from sessions_app.models import EndUser, SessionOperation, Toolkit, ToolRouterSession
from sessions_app.tool_router import intents, reconcile, remote_deletes
from sessions_app.tool_router.remote_deletes import tool_router_session_retry_remote_deletes
from sessions_app.tool_router.sessions import (
    tool_router_session_create,
    tool_router_session_refresh,
)
from tests.factories import give_session
from tests.helpers import audit_events


def test_refresh_replaces_the_session_and_deletes_the_old_one_at_composio(
    catalog: Emulator, alice: EndUser, alices_session: ToolRouterSession, session_admin: User
) -> None:
    result = tool_router_session_refresh(
        end_user=alice, toolkits=["github", "slack"], actor=session_admin
    )

    assert result.ok, result.message
    new = result.session
    assert new is not None and new.session_id != alices_session.session_id
    assert new.mcp_url != alices_session.mcp_url
    assert new.replaces_id == alices_session.pk and new.toolkits == ["github", "slack"]
    alices_session.refresh_from_db()
    assert alices_session.status == "superseded" and alices_session.superseded_at is not None
    assert alices_session.remote_deleted_at is not None
    assert alices_session.session_id not in catalog.sessions
    assert [r.endpoint for r in catalog.requests] == [
        "session.create",
        "session.create",
        "session.delete",
    ]
    assert catalog.requests[-1].path.endswith(alices_session.session_id)
    assert [e.outcome for e in audit_events("session.refresh")] == ["success"]


def test_refresh_without_toolkits_keeps_the_current_ones(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    give_session(alice, ["notion", "gmail"], session_admin)

    result = tool_router_session_refresh(end_user=alice, actor=session_admin)

    assert result.ok and result.session is not None
    assert result.session.toolkits == ["notion", "gmail"]
    assert catalog.requests[1].json["toolkits"] == {"enable": ["notion", "gmail"]}


@pytest.mark.parametrize("toolkits", [["github"], None], ids=["new toolkits", "kept toolkits"])
def test_refresh_of_a_user_without_a_session_is_skipped(
    catalog: Emulator, alice: EndUser, session_admin: User, toolkits: list[str] | None
) -> None:
    result = tool_router_session_refresh(end_user=alice, toolkits=toolkits, actor=session_admin)

    assert result.outcome == "skipped" and "use create" in result.message
    assert catalog.requests == []
    assert not SessionOperation.objects.exists()
    [event] = audit_events("session.refresh")
    assert event.outcome == "failure" and event.details["result"] == "skipped"


def test_a_refresh_keeping_a_toolkit_disallowed_since_is_rejected_and_sends_nothing(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    old = give_session(alice, ["github", "slack"], session_admin)
    Toolkit.objects.filter(slug="slack").update(is_allowed=False)
    sent = len(catalog.requests)

    result = tool_router_session_refresh(end_user=alice, actor=session_admin)

    assert result.outcome == "failed" and "slack" in result.message, result.message
    assert len(catalog.requests) == sent
    assert not SessionOperation.objects.filter(kind="refresh").exists()
    old.refresh_from_db()
    assert old.status == "active"
    [event] = audit_events("input.rejected")
    assert event.details["toolkits"] == ["github", "slack"]


def test_a_refresh_keeping_toolkits_sends_those_the_session_holds_when_it_is_claimed(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    # Re-scoped (here, by a direct write) just before: the refresh keeps what it holds now.
    old = give_session(alice, ["github", "slack"], session_admin)
    ToolRouterSession.objects.filter(pk=old.pk).update(toolkits=["github"])

    result = tool_router_session_refresh(end_user=alice, actor=session_admin)

    assert result.ok and result.session is not None and result.session.toolkits == ["github"]
    assert catalog.requests[-2].json["toolkits"] == {"enable": ["github"]}
    assert SessionOperation.objects.get(kind="refresh").toolkits == ["github"]


def test_a_failed_refresh_keeps_the_old_session_active(
    catalog: Emulator, alice: EndUser, alices_session: ToolRouterSession, session_admin: User
) -> None:
    catalog.faults.enqueue(500, endpoint="session.create")

    result = tool_router_session_refresh(end_user=alice, toolkits=["gmail"], actor=session_admin)

    assert result.outcome == "unknown" and "still active" in result.message
    assert ToolRouterSession.objects.get().status == "active"
    assert result.session == alices_session
    assert catalog.count("session.delete") == 0
    assert [e.outcome for e in audit_events("session.refresh")] == ["unknown"]


def test_a_failed_remote_delete_is_stored_audited_and_retried_later(
    catalog: Emulator, alice: EndUser, alices_session: ToolRouterSession, session_admin: User
) -> None:
    catalog.faults.enqueue(500, endpoint="session.delete")

    result = tool_router_session_refresh(end_user=alice, toolkits=["github"], actor=session_admin)

    assert result.ok and "will be retried" in result.message
    old = ToolRouterSession.objects.get(pk=alices_session.pk)
    assert old.status == "superseded" and old.remote_deleted_at is None
    assert "500" in old.remote_delete_error
    assert old.session_id in catalog.sessions
    assert [e.outcome for e in audit_events("session.remote_delete")] == ["unknown"]

    retried = tool_router_session_retry_remote_deletes(actor=session_admin)

    assert retried.deleted == [old.session_id] and not retried.failed
    old.refresh_from_db()
    assert old.remote_deleted_at is not None and old.remote_delete_error == ""
    assert old.session_id not in catalog.sessions
    assert [e.outcome for e in audit_events("session.remote_delete")] == ["unknown", "success"]


@pytest.mark.usefixtures("alices_session")
def test_a_busy_end_user_gets_already_in_progress_and_no_call(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    SessionOperation.objects.create(kind="refresh", end_user=alice, toolkits=["github"])

    result = tool_router_session_refresh(end_user=alice, toolkits=["gmail"], actor=session_admin)

    assert result.outcome == "in_progress" and "already in progress" in result.message
    assert catalog.count("session.create") == 1


def test_a_stale_pending_intent_no_longer_locks_the_user(
    catalog: Emulator, alice: EndUser, session_admin: User, settings
) -> None:
    settings.TOOL_ROUTER_OPERATION_STALE_SECONDS = 0
    stale = SessionOperation.objects.create(kind="create", end_user=alice, toolkits=["github"])

    result = tool_router_session_create(end_user=alice, toolkits=["github"], actor=session_admin)

    assert result.ok
    stale.refresh_from_db()
    assert stale.state == "unknown" and "Abandoned" in stale.error


def test_a_refresh_past_a_pending_intent_acts_on_the_session_read_after_settling_it(
    catalog: Emulator,
    alice: EndUser,
    alices_session: ToolRouterSession,
    session_admin: User,
    settings,
    monkeypatch,
) -> None:
    settings.TOOL_ROUTER_OPERATION_STALE_SECONDS = 0
    stale = SessionOperation.objects.create(kind="refresh", end_user=alice, toolkits=["github"])
    settle = intents._settle_pending
    newer: list[ToolRouterSession] = []

    def settle_while_its_store_commits(attempt, pending) -> None:
        settle(attempt, pending)
        # What the pending intent's own store would do, committing while it is settled.
        ToolRouterSession.objects.filter(pk=alices_session.pk).update(status="superseded")
        newer.append(give_session(alice, ["gmail"], session_admin))

    monkeypatch.setattr(intents, "_settle_pending", settle_while_its_store_commits)

    result = tool_router_session_refresh(end_user=alice, actor=session_admin)

    assert result.ok, result.message
    stale.refresh_from_db()
    assert stale.state == "unknown"
    # The session that was active once the intent was settled, with its toolkits.
    assert result.session is not None and result.session.replaces_id == newer[0].pk
    assert result.session.toolkits == ["gmail"]
    assert ToolRouterSession.objects.get(pk=newer[0].pk).status == "superseded"


def test_a_remote_delete_handed_over_but_never_recorded_is_deleted_again_by_reconciliation(
    catalog: Emulator, alice: EndUser, alices_session: ToolRouterSession, session_admin: User
) -> None:
    handed: list[tuple[int, object]] = []
    # A bulk runner takes the delete to record with its batch, and dies before writing it.
    with remote_deletes.recorded_by(lambda pk, at: handed.append((pk, at))):
        result = tool_router_session_refresh(end_user=alice, actor=session_admin)

    assert result.ok and "deleted at Composio" in result.message
    assert [pk for pk, _ in handed] == [alices_session.pk]
    old = ToolRouterSession.objects.get(pk=alices_session.pk)
    assert old.status == "superseded" and old.remote_deleted_at is None
    assert old.session_id not in catalog.sessions

    report = reconcile.reconcile(grace=timedelta(0))

    old.refresh_from_db()
    assert old.remote_deleted_at is not None and old.remote_delete_error == ""
    assert [item.ref for item in report.items] == [f"session {old.session_id}"]
    assert catalog.count("session.delete") == 2  # the second one found nothing to delete
