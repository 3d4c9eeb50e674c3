"""Session services against the Composio emulator: write order, faults, lock, audit."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

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
from sessions_app.tool_router import end_users
from sessions_app.tool_router.remote_deletes import tool_router_session_retry_remote_deletes
from sessions_app.tool_router.sessions import (
    tool_router_session_change_toolkits,
    tool_router_session_create,
    tool_router_session_delete,
    tool_router_session_refresh,
)
from sessions_app.tool_router.toolkit_catalog import toolkit_choices_clean
from tests.factories import ALLOWED, give_session


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- toolkit_choices_clean ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "fragment"),
    [
        ([], "at least one toolkit"),
        (None, "list of slugs"),
        ("github", "list of slugs"),
        (["GitHub"], "lower-case"),
        ([" github"], "lower-case"),
        (["github", "github"], "chosen more than once: github"),
        (["nosuchkit"], "Not in Composio's toolkit catalog: 'nosuchkit'"),
        (["jira"], "Not on the allow-list: jira"),
        ([""], "non-empty text"),
        ([3], "non-empty text"),
    ],
)
def test_toolkit_choices_clean_rejects_bad_choices_with_a_clear_message(
    catalog: Emulator, choice: object, fragment: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        toolkit_choices_clean(choice)  # type: ignore[arg-type]
    assert fragment in " ".join(caught.value.messages)


def test_toolkit_choices_clean_refuses_toolkits_no_longer_in_the_catalog(catalog: Emulator) -> None:
    Toolkit.objects.filter(slug="github").update(in_catalog=False)
    with pytest.raises(ValidationError, match="No longer in Composio's toolkit catalog"):
        toolkit_choices_clean(["github"])


def test_toolkit_choices_clean_enforces_the_maximum(catalog: Emulator, settings) -> None:
    settings.TOOL_ROUTER_MAX_TOOLKITS = 2
    with pytest.raises(ValidationError, match="at most 2"):
        toolkit_choices_clean(["github", "gmail", "slack"])


def test_toolkit_choices_clean_keeps_the_chosen_order(catalog: Emulator) -> None:
    assert toolkit_choices_clean(["slack", "github"]) == ["slack", "github"]


# --- create ------------------------------------------------------------------------------------


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


def test_create_skips_a_user_who_already_has_a_session_and_says_to_refresh(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    give_session(alice, ["github"], session_admin)

    result = tool_router_session_create(end_user=alice, toolkits=["gmail"], actor=session_admin)

    assert result.outcome == "skipped" and "use refresh" in result.message
    assert catalog.count("session.create") == 1
    assert ToolRouterSession.objects.count() == 1


def test_create_with_bad_toolkits_is_rejected_audited_and_calls_nothing(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    result = tool_router_session_create(
        end_user=alice, toolkits=["github", "nosuchkit"], actor=session_admin
    )

    assert result.outcome == "failed" and "nosuchkit" in result.message
    assert catalog.requests == []
    assert not ToolRouterSession.objects.exists() and not SessionOperation.objects.exists()
    (event,) = AuditEvent.objects.exclude(action="catalog.sync")
    assert (event.action, event.outcome) == ("input.rejected", "rejected")


def test_create_without_permission_is_refused_and_audited(
    catalog: Emulator, alice: EndUser, support_user: User
) -> None:
    result = tool_router_session_create(end_user=alice, toolkits=["github"], actor=support_user)

    assert result.outcome == "refused" and "permission" in result.message
    assert catalog.requests == []
    (event,) = AuditEvent.objects.exclude(action="catalog.sync")
    assert (event.action, event.outcome) == ("access.refused", "refused")


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


# --- refresh -----------------------------------------------------------------------------------


def test_refresh_replaces_the_session_and_deletes_the_old_one_at_composio(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    first = give_session(alice, ["github"], session_admin)

    result = tool_router_session_refresh(
        end_user=alice, toolkits=["github", "slack"], actor=session_admin
    )

    assert result.ok, result.message
    new = result.session
    assert new is not None and new.session_id != first.session_id
    assert new.mcp_url != first.mcp_url
    assert new.replaces_id == first.pk and new.toolkits == ["github", "slack"]
    first.refresh_from_db()
    assert first.status == "superseded" and first.superseded_at is not None
    assert first.remote_deleted_at is not None
    assert first.session_id not in catalog.sessions
    assert [r.endpoint for r in catalog.requests] == [
        "session.create",
        "session.create",
        "session.delete",
    ]
    assert catalog.requests[-1].path.endswith(first.session_id)
    assert [e.outcome for e in events("session.refresh")] == ["success"]


def test_refresh_without_toolkits_keeps_the_current_ones(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    give_session(alice, ["notion", "gmail"], session_admin)

    result = tool_router_session_refresh(end_user=alice, actor=session_admin)

    assert result.ok and result.session is not None
    assert result.session.toolkits == ["notion", "gmail"]
    assert catalog.requests[1].json["toolkits"] == {"enable": ["notion", "gmail"]}


def test_refresh_of_a_user_without_a_session_is_skipped(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    result = tool_router_session_refresh(end_user=alice, toolkits=["github"], actor=session_admin)

    assert result.outcome == "skipped" and "use create" in result.message
    assert catalog.requests == []


def test_a_failed_refresh_keeps_the_old_session_active(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    first = give_session(alice, ["github"], session_admin)
    catalog.faults.enqueue(500, endpoint="session.create")

    result = tool_router_session_refresh(end_user=alice, toolkits=["gmail"], actor=session_admin)

    assert result.outcome == "unknown" and "still active" in result.message
    assert ToolRouterSession.objects.get().status == "active"
    assert result.session == first
    assert catalog.count("session.delete") == 0
    assert [e.outcome for e in events("session.refresh")] == ["unknown"]


def test_a_failed_remote_delete_is_stored_audited_and_retried_later(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    first = give_session(alice, ["github"], session_admin)
    catalog.faults.enqueue(500, endpoint="session.delete")

    result = tool_router_session_refresh(end_user=alice, toolkits=["github"], actor=session_admin)

    assert result.ok and "will be retried" in result.message
    old = ToolRouterSession.objects.get(pk=first.pk)
    assert old.status == "superseded" and old.remote_deleted_at is None
    assert "500" in old.remote_delete_error
    assert old.session_id in catalog.sessions
    assert [e.outcome for e in events("session.remote_delete")] == ["unknown"]

    retried = tool_router_session_retry_remote_deletes(actor=session_admin)

    assert retried.deleted == [old.session_id] and not retried.failed
    old.refresh_from_db()
    assert old.remote_deleted_at is not None and old.remote_delete_error == ""
    assert old.session_id not in catalog.sessions
    assert [e.outcome for e in events("session.remote_delete")] == ["unknown", "success"]


def test_a_busy_end_user_gets_already_in_progress_and_no_call(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    give_session(alice, ["github"], session_admin)
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


# --- change toolkits and delete ----------------------------------------------------------------


def test_change_toolkits_keeps_the_session_id_and_url(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    session = give_session(alice, ["github"], session_admin)

    result = tool_router_session_change_toolkits(
        session=session, toolkits=["github", "notion"], actor=session_admin
    )

    assert result.ok, result.message
    session.refresh_from_db()
    assert session.toolkits == ["github", "notion"] and session.config_version == 2
    assert catalog.sessions[session.session_id]["config"]["toolkits"] == {
        "enabled": ["github", "notion"]
    }
    patch = [r for r in catalog.requests if r.endpoint == "session.update"][0]
    assert patch.json["expected_config_version"] == 1
    assert ToolRouterSession.objects.count() == 1


def test_change_toolkits_conflict_says_someone_else_changed_it(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    session = give_session(alice, ["github"], session_admin)
    ToolRouterSession.objects.filter(pk=session.pk).update(config_version=7)
    session.refresh_from_db()

    result = tool_router_session_change_toolkits(
        session=session, toolkits=["gmail"], actor=session_admin
    )

    assert result.outcome == "failed"
    assert "Someone else changed" in result.message and "reload" in result.message
    session.refresh_from_db()
    assert session.toolkits == ["github"]
    assert catalog.sessions[session.session_id]["config"]["toolkits"] == {"enabled": ["github"]}


def test_delete_removes_the_session_at_composio_and_keeps_the_row(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    session = give_session(alice, ["github"], session_admin)

    result = tool_router_session_delete(session=session, actor=session_admin)

    assert result.ok, result.message
    session.refresh_from_db()
    assert session.status == "deleted" and session.deleted_at is not None
    assert session.session_id not in catalog.sessions
    assert [e.outcome for e in events("session.delete")] == ["success"]


def test_delete_of_a_session_composio_lost_still_marks_it_deleted(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    session = give_session(alice, ["github"], session_admin)
    catalog.reset()

    result = tool_router_session_delete(session=session, actor=session_admin)

    assert result.ok and "no longer knew it" in result.message
    assert ToolRouterSession.objects.get().status == "deleted"


def test_a_failed_delete_leaves_the_session_active(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    session = give_session(alice, ["github"], session_admin)
    catalog.faults.enqueue(403, endpoint="session.delete")

    result = tool_router_session_delete(session=session, actor=session_admin)

    assert result.outcome == "failed" and "403" in result.message
    assert ToolRouterSession.objects.get().status == "active"
    assert HTTPStatus.FORBIDDEN == 403


# --- arbitrary input ---------------------------------------------------------------------------

_anything = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.lists(st.one_of(st.text(max_size=30), st.integers(), st.none()), max_size=8),
)


@given(choice=_anything)
@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_toolkit_choices_clean_never_crashes_and_only_passes_allowed_slugs(
    catalog: Emulator, choice: object
) -> None:
    try:
        cleaned = toolkit_choices_clean(choice)  # type: ignore[arg-type]
    except ValidationError as error:
        assert error.messages
    else:
        assert cleaned and set(cleaned) <= set(ALLOWED)


@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_csv_preview_never_crashes_and_never_writes(db: None, content: bytes) -> None:
    preview = end_users.end_user_import_preview(content=b"external_id,name,email\n" + content)
    assert preview.error or preview.valid or preview.rejected
    assert not EndUser.objects.exists()
