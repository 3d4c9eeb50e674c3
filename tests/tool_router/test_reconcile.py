"""reconcile_sessions against the emulator: adopt, delete, retry, close, or ask a person."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from sessions_app.composio import seam as composio_seam
from sessions_app.composio.emulator import Emulator
from sessions_app.models import (
    EndUser,
    SessionOperation,
    SessionToolkit,
    ToolRouterSession,
)
from sessions_app.tool_router import sessions
from tests.factories import create_unstored_session, give_session
from tests.helpers import audit_events, refuse_session_inserts, run_reconcile

pytestmark = pytest.mark.django_db


# --- Nothing to do ------------------------------------------------------------------------------


def test_with_nothing_open_it_says_so_and_exits_zero(catalog: Emulator) -> None:
    code, out = run_reconcile()

    assert code == 0
    assert out.strip() == "Nothing to reconcile."
    assert catalog.requests == [] and audit_events("session.reconcile") == []


@pytest.mark.usefixtures("alices_session")  # a succeeded intent
def test_settled_failed_and_fresh_intents_are_left_alone(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    SessionOperation.objects.create(kind="create", end_user=alice, state="failed")
    SessionOperation.objects.create(kind="refresh", end_user=alice, toolkits=["gmail"])  # fresh
    catalog.reset()

    out = io.StringIO()
    call_command("reconcile_sessions", stdout=out)  # default grace: the pending one is in flight

    assert out.getvalue().strip() == "Nothing to reconcile."
    assert catalog.requests == []


# --- Create and refresh: Composio said yes, our commit failed -----------------------------------


def test_a_session_composio_created_but_the_console_failed_to_store_is_adopted(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    result = create_unstored_session(alice, ["github", "gmail"], session_admin)
    assert result.outcome == "unknown"
    intent = SessionOperation.objects.get(end_user=alice)
    assert intent.state == "unknown" and intent.remote_session_id in catalog.sessions
    assert not ToolRouterSession.objects.exists()

    code, out = run_reconcile()

    assert code == 0, out
    session = ToolRouterSession.objects.get(end_user=alice)
    assert session.session_id == intent.remote_session_id and session.status == "active"
    assert session.mcp_url == catalog.sessions[session.session_id]["mcp"]["url"]
    assert session.toolkits == ["github", "gmail"] and session.created_by == session_admin
    assert sorted(
        SessionToolkit.objects.filter(session=session).values_list("toolkit__slug", flat=True)
    ) == ["github", "gmail"]
    intent.refresh_from_db()
    assert intent.state == "resolved" and intent.resolved_at is not None
    assert intent.resolution.startswith("adopted: stored Composio's session")
    assert f"ADOPTED      operation {intent.public_id} (usr_alice)" in out
    assert "1 items: 1 adopted, 0 deleted" in out
    [event] = audit_events("session.reconcile")
    assert (event.outcome, event.session_id, event.end_user_id) == ("success", session.pk, alice.pk)
    assert event.details["result"] == "adopted" and "mcp_fingerprint" in event.details
    assert session.mcp_url not in str(event.details) + event.reason


def test_a_refresh_whose_commit_failed_keeps_the_old_session_and_deletes_the_orphan(
    catalog: Emulator, alice: EndUser, alices_session: ToolRouterSession, session_admin: User
) -> None:
    with refuse_session_inserts():
        result = sessions.tool_router_session_refresh(
            end_user=alice, toolkits=["gmail"], actor=session_admin
        )
    assert result.outcome == "unknown"
    orphan = SessionOperation.objects.get(kind="refresh").remote_session_id
    assert orphan in catalog.sessions

    code, out = run_reconcile()

    assert code == 0, out
    assert orphan not in catalog.sessions and alices_session.session_id in catalog.sessions
    alices_session.refresh_from_db()
    assert alices_session.status == "active" and alices_session.superseded_at is None
    assert list(ToolRouterSession.objects.values_list("session_id", flat=True)) == [
        alices_session.session_id
    ]
    assert f"usr_alice keeps session {alices_session.session_id}" in out
    assert audit_events("session.reconcile")[0].details["result"] == "deleted"


def test_an_orphan_is_deleted_when_someone_gave_the_user_a_session_meanwhile(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    create_unstored_session(alice, ["github"], session_admin)
    orphan = SessionOperation.objects.get().remote_session_id
    other = give_session(alice, ["slack"], session_admin)

    code, _ = run_reconcile()

    assert code == 0
    assert orphan not in catalog.sessions and other.session_id in catalog.sessions
    assert ToolRouterSession.objects.get(status="active") == other


def test_an_orphan_composio_no_longer_has_is_closed_without_acting(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    create_unstored_session(alice, ["github"], session_admin)
    intent = SessionOperation.objects.get()
    composio_seam.delete_session(intent.remote_session_id)

    code, out = run_reconcile()

    assert code == 0
    assert "CLOSED" in out and "Composio no longer has session" in out
    assert not ToolRouterSession.objects.exists()
    assert catalog.count("session.delete") == 1  # only ours above


def test_a_stale_pending_intent_that_named_its_session_is_adopted_and_a_fresh_one_is_not(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    remote = composio_seam.create_session(user_id="usr_alice", toolkits=["notion"])
    intent = SessionOperation.objects.create(
        kind="create", end_user=alice, toolkits=["notion"], remote_session_id=remote.session_id
    )

    code, out = run_reconcile("--grace-seconds=600")
    assert (code, out.strip()) == (0, "Nothing to reconcile.")

    SessionOperation.objects.filter(pk=intent.pk).update(
        created_at=timezone.now() - timedelta(hours=1)
    )
    code, out = run_reconcile("--grace-seconds=600")

    assert code == 0 and "left pending" not in out and "ADOPTED" in out
    assert ToolRouterSession.objects.get().session_id == remote.session_id


def test_an_intent_that_never_learned_its_session_id_is_closed_as_unverifiable(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    catalog.faults.enqueue(500, endpoint="session.create")
    result = sessions.tool_router_session_create(
        end_user=alice, toolkits=["github"], actor=session_admin
    )
    assert result.outcome == "unknown"
    catalog.reset()

    code, out = run_reconcile()

    assert code == 0
    assert "UNVERIFIABLE" in out and "Composio lists no sessions" in out
    assert catalog.requests == []  # nothing it could ask
    intent = SessionOperation.objects.get()
    assert intent.state == "resolved" and intent.resolution.startswith("unverifiable:")
    [event] = audit_events("session.reconcile")
    assert event.outcome == "unknown" and event.details["result"] == "unverifiable"


def test_a_session_of_another_user_id_is_left_for_a_person(
    catalog: Emulator, alice: EndUser
) -> None:
    remote = composio_seam.create_session(user_id="usr_bob", toolkits=["github"])
    SessionOperation.objects.create(
        kind="create", end_user=alice, state="unknown", remote_session_id=remote.session_id
    )

    code, out = run_reconcile()

    assert code == 1
    assert "need a person" in out and "belongs to user id 'usr_bob'" in out
    assert remote.session_id in catalog.sessions and not ToolRouterSession.objects.exists()
    assert SessionOperation.objects.get().state == "unknown"


def test_when_composio_fails_the_item_stays_open_and_the_next_run_settles_it(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    create_unstored_session(alice, ["github"], session_admin)
    catalog.faults.enqueue(500, endpoint="session.get")

    code, out = run_reconcile()

    assert code == 3 and "RETRY" in out and "the next run retries them" in out
    assert SessionOperation.objects.get().state == "unknown"
    assert catalog.count("session.get") == 1  # a 500 on a read is not retried

    code, out = run_reconcile()
    assert code == 0 and "ADOPTED" in out
    assert run_reconcile() == (0, "Nothing to reconcile.\n")


# --- Change toolkits ----------------------------------------------------------------------------


def test_a_toolkit_change_composio_applied_is_recorded(
    catalog: Emulator, alices_session: ToolRouterSession, session_admin: User
) -> None:
    catalog.faults.truncated(endpoint="session.update")  # applied, answer cut
    result = sessions.tool_router_session_change_toolkits(
        session=alices_session, toolkits=["github", "slack"], actor=session_admin
    )
    assert result.outcome == "unknown"
    alices_session.refresh_from_db()
    assert alices_session.toolkits == ["github"]

    code, out = run_reconcile()

    assert code == 0 and "ADOPTED" in out
    alices_session.refresh_from_db()
    assert alices_session.toolkits == ["github", "slack"] and alices_session.config_version == 2
    assert SessionToolkit.objects.filter(session=alices_session).count() == 2


def test_a_toolkit_change_composio_did_not_apply_is_closed(
    catalog: Emulator, alices_session: ToolRouterSession, session_admin: User
) -> None:
    catalog.faults.enqueue(500, endpoint="session.update")
    sessions.tool_router_session_change_toolkits(
        session=alices_session, toolkits=["slack"], actor=session_admin
    )

    code, out = run_reconcile()

    assert code == 0 and "Composio did not apply the change" in out
    alices_session.refresh_from_db()
    assert alices_session.toolkits == ["github"] and alices_session.config_version == 1


def test_an_active_session_composio_lost_needs_a_person_until_it_is_replaced(
    catalog: Emulator, alice: EndUser, alices_session: ToolRouterSession, session_admin: User
) -> None:
    SessionOperation.objects.create(
        kind="change_toolkits", end_user=alice, session=alices_session, state="unknown"
    )
    composio_seam.delete_session(alices_session.session_id)

    code, out = run_reconcile()
    assert code == 1 and "refresh or delete it in the console" in out
    assert run_reconcile()[0] == 1  # still there: a person must act

    sessions.tool_router_session_delete(session=alices_session, actor=session_admin)
    code, out = run_reconcile()
    assert code == 0 and "no longer active" in out


# --- Delete -------------------------------------------------------------------------------------


def test_a_delete_of_unknown_outcome_is_finished(
    catalog: Emulator, alices_session: ToolRouterSession, session_admin: User
) -> None:
    catalog.faults.enqueue(502, endpoint="session.delete")
    result = sessions.tool_router_session_delete(session=alices_session, actor=session_admin)
    assert result.outcome == "unknown"
    assert alices_session.session_id in catalog.sessions

    code, out = run_reconcile()

    assert code == 0 and "finished the requested delete" in out
    assert alices_session.session_id not in catalog.sessions
    alices_session.refresh_from_db()
    assert alices_session.status == "deleted" and alices_session.remote_deleted_at is not None


def test_a_delete_composio_did_apply_is_recorded_as_deleted(
    catalog: Emulator, alices_session: ToolRouterSession, session_admin: User
) -> None:
    catalog.faults.truncated(endpoint="session.delete")
    assert sessions.tool_router_session_delete(
        session=alices_session, actor=session_admin
    ).outcome == ("unknown")

    code, out = run_reconcile()

    assert code == 0 and "Composio no longer had it" in out
    alices_session.refresh_from_db()
    assert alices_session.status == "deleted"


# --- Superseded sessions not deleted at Composio ------------------------------------------------


def test_a_failed_remote_delete_is_retried_until_it_succeeds(
    catalog: Emulator, alice: EndUser, alices_session: ToolRouterSession, session_admin: User
) -> None:
    catalog.faults.enqueue(503, endpoint="session.delete", times=2)
    assert sessions.tool_router_session_refresh(
        end_user=alice, toolkits=["gmail"], actor=session_admin
    ).ok
    alices_session.refresh_from_db()
    assert alices_session.remote_delete_error and alices_session.session_id in catalog.sessions

    code, out = run_reconcile()
    assert code == 3 and f"RETRY        session {alices_session.session_id}" in out

    code, out = run_reconcile()
    assert code == 0 and f"DELETED      session {alices_session.session_id}" in out
    assert alices_session.session_id not in catalog.sessions
    alices_session.refresh_from_db()
    assert alices_session.remote_deleted_at is not None and alices_session.remote_delete_error == ""
    assert [e.outcome for e in audit_events("session.reconcile")] == ["failure", "success"]
    assert run_reconcile() == (0, "Nothing to reconcile.\n")


def test_a_superseded_session_never_deleted_is_deleted_after_the_grace_period(
    catalog: Emulator, alices_session: ToolRouterSession, session_admin: User
) -> None:
    give_session(EndUser.objects.create(external_id="usr_bob"), ["github"], session_admin)
    ToolRouterSession.objects.filter(pk=alices_session.pk).update(
        status="superseded", superseded_at=timezone.now()
    )

    assert run_reconcile("--grace-seconds=600") == (0, "Nothing to reconcile.\n")
    code, out = run_reconcile()

    assert code == 0 and "deleted the superseded session at Composio." in out
    assert alices_session.session_id not in catalog.sessions
