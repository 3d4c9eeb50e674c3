"""The session commands: exit codes, messages, and nothing changed on bad input."""

from __future__ import annotations

import json
import stat
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, Toolkit, ToolRouterSession
from sessions_app.tool_router import attention, toolkit_catalog

if TYPE_CHECKING:
    from tests.conftest import EmulatorRestarts

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def fails(*args: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=StringIO())
    return caught.value


def test_create_session_with_create_user_makes_the_user_and_the_session(
    catalog: Emulator,
) -> None:
    out = run("create_session", "usr_cli", "--toolkits", "github, gmail", "--create-user")

    assert "Created end user usr_cli" in out and "Created session" in out
    session = ToolRouterSession.objects.get(end_user__external_id="usr_cli")
    assert session.toolkits == ["github", "gmail"]
    assert catalog.requests[0].json["user_id"] == "usr_cli"
    assert session.mcp_url not in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["default", "--toolkits", "github", "--create-user"], "Composio's shared user id"),
        (["has space", "--toolkits", "github", "--create-user"], "whitespace"),
        (["usr_new", "--toolkits", "nosuchkit", "--create-user"], "nosuchkit"),
        (["usr_new", "--toolkits", "GitHub", "--create-user"], "lower-case"),
        (["usr_new", "--toolkits", "github,github", "--create-user"], "more than once"),
        (["usr_new", "--toolkits", "", "--create-user"], "non-empty"),
        (["usr_missing", "--toolkits", "github"], "No end user"),
        (["usr_new", "--toolkits", "github", "--actor", "nobody"], "No active staff account"),
    ],
)
def test_bad_input_exits_1_with_a_clear_message_and_changes_nothing(
    catalog: Emulator, args: list[str], fragment: str
) -> None:
    error = fails("create_session", *args)

    assert error.returncode == 1 and fragment in str(error)
    assert not EndUser.objects.exists() and not ToolRouterSession.objects.exists()
    assert catalog.requests == []


def test_a_rejected_toolkit_is_audited(catalog: Emulator) -> None:
    fails("create_session", "usr_new", "--toolkits", "nosuchkit", "--create-user")

    assert AuditEvent.objects.get(action="input.rejected").outcome == "rejected"


def test_an_actor_without_permission_is_refused(catalog: Emulator, support_user: User) -> None:
    EndUser.objects.create(external_id="usr_1")

    error = fails("create_session", "usr_1", "--toolkits", "github", "--actor", "sam_support")

    assert error.returncode == 1 and "permission denied" in str(error)
    assert catalog.requests == []
    assert AuditEvent.objects.get(action="access.refused").actor == support_user


def test_create_on_a_user_with_a_session_exits_4_and_says_to_refresh(catalog: Emulator) -> None:
    run("create_session", "usr_1", "--toolkits", "github", "--create-user")

    error = fails("create_session", "usr_1", "--toolkits", "gmail")

    assert error.returncode == 4 and "use refresh" in str(error)
    assert catalog.count("session.create") == 1


def test_an_unknown_outcome_exits_3(catalog: Emulator) -> None:
    EndUser.objects.create(external_id="usr_1")
    catalog.faults.enqueue(500, endpoint="session.create")

    error = fails("create_session", "usr_1", "--toolkits", "github")

    assert error.returncode == 3 and "outcome is unknown" in str(error)


def test_refresh_session_keeps_the_toolkits_by_default_and_deletes_the_old_one(
    catalog: Emulator, session_admin: User
) -> None:
    run("create_session", "usr_1", "--toolkits", "github,slack", "--create-user")
    old = ToolRouterSession.objects.get()

    out = run("refresh_session", "usr_1", "--actor", "ada_admin")

    assert "Refreshed the session of usr_1" in out
    new = ToolRouterSession.objects.get(status="active")
    assert new.toolkits == ["github", "slack"] and new.replaces == old
    assert new.created_by == session_admin
    assert old.session_id not in catalog.sessions


def test_refresh_session_with_toolkits_and_a_failure_keeps_the_old_session(
    catalog: Emulator,
) -> None:
    run("create_session", "usr_1", "--toolkits", "github", "--create-user")
    catalog.faults.enqueue(401, endpoint="session.create")

    error = fails("refresh_session", "usr_1", "--toolkits", "gmail")

    assert error.returncode == 1 and "401" in str(error) and "usr_1" in str(error)
    assert ToolRouterSession.objects.get().status == "active"


def test_refresh_session_of_a_user_without_session_exits_4(catalog: Emulator) -> None:
    EndUser.objects.create(external_id="usr_1")
    assert fails("refresh_session", "usr_1").returncode == 4


def test_delete_session_deletes_at_composio_and_keeps_the_row(catalog: Emulator) -> None:
    run("create_session", "usr_1", "--toolkits", "github", "--create-user")

    out = run("delete_session", "usr_1")

    assert "Deleted session" in out
    session = ToolRouterSession.objects.get()
    assert session.status == "deleted" and session.session_id not in catalog.sessions
    assert fails("delete_session", "usr_1").returncode == 4


def test_delete_session_of_an_unknown_user_exits_1(catalog: Emulator) -> None:
    error = fails("delete_session", "nobody_here")
    assert error.returncode == 1 and "No end user" in str(error)


def test_seed_demo_gives_about_half_the_demo_users_a_session(emulator: Emulator) -> None:
    toolkit_catalog.toolkit_catalog_sync()
    emulator.reset()

    out = run("seed_demo", "--users", "6")

    assert "Demo sessions: 3 new, 3 active." in out
    assert emulator.count("session.create") == 3
    assert ToolRouterSession.objects.filter(status="active").count() == 3
    assert "Demo sessions: 0 new, 3 active." in run("seed_demo", "--users", "6")


def test_seed_demo_leaves_accounts_in_every_state_and_an_execution_log(emulator: Emulator) -> None:
    toolkit_catalog.toolkit_catalog_sync()
    emulator.reset()

    out = run("seed_demo", "--users", "14")

    statuses = sorted(a["status"] for a in emulator.accounts.values())
    assert statuses == ["ACTIVE", "ACTIVE", "ACTIVE", "EXPIRED", "FAILED", "INACTIVE", "REVOKED"]
    logs = list(emulator.execution_logs.values())
    assert {e["status"] for e in logs} == {"success", "failed"}
    assert "Demo activity: 7 new accounts" in out and "refused for want of an active" in out
    # The sweep ran: the expired, failed, revoked and disabled accounts need attention.
    assert "Users needing attention: 4 (7 checked now)." in out
    reasons = {r["text"].split(": ")[1] for s in attention.needing_attention() for r in s.reasons}
    assert {"the connected account is expired (The provider's token expired)."} <= reasons
    before = (len(emulator.accounts), len(logs), emulator.count("session.execute"))

    again = run("seed_demo", "--users", "14")

    assert "Demo activity: 0 new accounts, 0 tool runs" in again
    after = (
        len(emulator.accounts),
        len(emulator.execution_logs),
        emulator.count("session.execute"),
    )
    assert after == before


@pytest.mark.usefixtures("unreachable_composio")
def test_seed_demo_without_composio_skips_sessions_with_a_note(db: None) -> None:
    Toolkit.objects.create(slug="github", name="GitHub")

    out = run("seed_demo", "--users", "4")

    assert "Demo sessions stopped after 0" in out and "unreachable" in out
    assert EndUser.objects.count() == 4 and not ToolRouterSession.objects.exists()


# --- seed_demo: safe to run again, across emulator restarts -------------------------------------


def _demo_world() -> tuple[int, int, list[str]]:
    """(staff users, end users, the active sessions' ids in order)."""
    active = ToolRouterSession.objects.filter(status="active").order_by("session_id")
    return (
        User.objects.count(),
        EndUser.objects.count(),
        list(active.values_list("session_id", flat=True)),
    )


def test_seed_demo_run_twice_duplicates_nothing_and_keeps_the_sessions(
    emulator: Emulator,
) -> None:
    toolkit_catalog.toolkit_catalog_sync()
    run("seed_demo", "--users", "6")
    before = _demo_world()
    assert emulator.count("session.create") == 3
    gets = emulator.count("session.get")  # the demo activity's runs read their session too

    out = run("seed_demo", "--users", "6")

    assert _demo_world() == before
    assert len(before[2]) == 3
    assert "Demo sessions kept: 3 Composio still knows; renewed: 0 it no longer knew." in out
    assert emulator.count("session.create") == 3
    assert emulator.count("session.get") == gets + 3  # one look per kept session, no runs


def test_seed_demo_keeps_the_sessions_of_an_emulator_restarted_on_its_state_file(
    emulator_restarts: EmulatorRestarts, tmp_path: Path
) -> None:
    state = tmp_path / "emulator.sqlite3"
    emulator_restarts.start(state=state)
    toolkit_catalog.toolkit_catalog_sync()
    run("seed_demo", "--users", "6")
    before = _demo_world()
    urls = set(ToolRouterSession.objects.values_list("mcp_url", flat=True))

    again = emulator_restarts.start(state=state)
    out = run("seed_demo", "--users", "6")

    assert _demo_world() == before
    assert set(ToolRouterSession.objects.values_list("mcp_url", flat=True)) == urls
    assert sorted(again.sessions) == before[2]
    assert again.count("session.create") == 0
    assert "Demo sessions kept: 3 Composio still knows" in out


def test_seed_demo_renews_the_sessions_a_forgetful_emulator_lost(
    emulator_restarts: EmulatorRestarts,
) -> None:
    emulator_restarts.start()
    toolkit_catalog.toolkit_catalog_sync()
    run("seed_demo", "--users", "6")
    users, end_users, old = _demo_world()

    again = emulator_restarts.start()
    out = run("seed_demo", "--users", "6")

    assert "Demo sessions kept: 0 Composio still knows; renewed: 3 it no longer knew." in out
    now = _demo_world()
    assert now[:2] == (users, end_users)
    assert len(now[2]) == 3 and not set(now[2]) & set(old)
    assert sorted(again.sessions) == now[2]


def _passwords(out: str) -> dict[str, str]:
    """The username -> password lines seed_demo printed."""
    names = {"support", "sessionadmin", "auditor", "admin"}
    rows = [line.split() for line in out.splitlines()]
    return {row[0]: row[1] for row in rows if len(row) > 1 and row[0] in names}


def test_seed_demo_keeps_the_passwords_in_a_private_file_and_renews_them_on_request(
    db: None, settings
) -> None:
    path = Path(settings.DEMO_PASSWORDS_PATH)
    first = _passwords(run("seed_demo", "--users", "2", "--no-sessions"))
    assert set(first) == {"support", "sessionadmin", "auditor", "admin"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == first

    path.chmod(0o644)
    second = _passwords(run("seed_demo", "--users", "2", "--no-sessions"))
    assert second == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all(User.objects.get(username=u).check_password(p) for u, p in first.items())

    renewed = _passwords(run("seed_demo", "--users", "2", "--no-sessions", "--renew-passwords"))
    assert set(renewed) == set(first)
    assert all(renewed[u] != first[u] for u in first)
    assert json.loads(path.read_text()) == renewed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for username, password in renewed.items():
        user = User.objects.get(username=username)
        assert user.check_password(password) and not user.check_password(first[username])
