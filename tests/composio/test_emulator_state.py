"""The emulator remembers: with a state file it comes back from a restart with its sessions,
connected accounts and connect links; without one it forgets (the tests' default)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from django.core.management import CommandError, call_command

from sessions_app.composio import seam as composio_seam
from sessions_app.composio.emulator import EmulatorControl, StateFileError
from sessions_app.composio.emulator.store import EmulatorStore
from tests.composio.contract import assert_answers
from tests.factories import EMULATOR_KEY
from tests.helpers import run_together

if TYPE_CHECKING:
    from tests.conftest import EmulatorRestarts


def _link(base_url: str, session_id: str, toolkit: str) -> dict:
    with httpx.Client(base_url=base_url, headers={"x-api-key": EMULATOR_KEY}, timeout=5) as http:
        answer = http.post(
            f"/api/v3.1/tool_router/session/{session_id}/link", json={"toolkit": toolkit}
        )
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_sessions_accounts_and_links_survive_a_restart(
    emulator_restarts: EmulatorRestarts, tmp_path: Path
) -> None:
    state = tmp_path / "emulator.sqlite3"
    first = emulator_restarts.start(state=state)
    kept = composio_seam.create_session(user_id="usr_a", toolkits=["github"])
    changed = composio_seam.create_session(user_id="usr_b", toolkits=["github", "gmail"])
    changed = composio_seam.update_session_toolkits(
        session_id=changed.session_id, toolkits=["gmail", "slack"], expected_config_version=1
    )
    gone = composio_seam.create_session(user_id="usr_c", toolkits=["slack"])
    composio_seam.delete_session(gone.session_id)
    EmulatorControl(first.base_url).set_connection(kept.session_id, "github", "ACTIVE")
    pending = _link(first.base_url, changed.session_id, "gmail")
    accounts_before = {
        s: composio_seam.session_connections(s) for s in (kept.session_id, changed.session_id)
    }

    second = emulator_restarts.start(state=state)

    assert second is not first
    assert second.base_url == first.base_url
    for before in (kept, changed):
        after = composio_seam.get_session(before.session_id)
        assert after.mcp_url == before.mcp_url
        assert after.toolkits == before.toolkits
        assert after.user_id == before.user_id
        assert after.config_version == before.config_version
    assert composio_seam.get_session(changed.session_id).config_version == 2
    assert composio_seam.get_session(changed.session_id).toolkits == ("gmail", "slack")
    for session_id, before in accounts_before.items():
        assert composio_seam.session_connections(session_id) == before
    github = composio_seam.session_connections(kept.session_id)[0]
    assert (github.slug, github.status) == ("github", "ACTIVE")
    assert composio_seam.delete_session_if_known(gone.session_id) is False

    # The connect link handed out before the restart still completes, with the same account.
    httpx.get(pending["redirect_url"], params={"decision": "allow"}, timeout=5).raise_for_status()
    gmail = {c.slug: c for c in composio_seam.session_connections(changed.session_id)}["gmail"]
    assert (gmail.status, gmail.connected_account_id) == ("ACTIVE", pending["connected_account_id"])

    # ...and what the restarted emulator was told is kept for the next start too.
    emulator_restarts.start(state=state)
    assert {c.slug: c.status for c in composio_seam.session_connections(changed.session_id)} == {
        "gmail": "ACTIVE",
        "slack": None,
    }


def test_without_a_state_file_a_restart_forgets_everything(
    emulator_restarts: EmulatorRestarts,
) -> None:
    emulator_restarts.start()
    session = composio_seam.create_session(user_id="usr_a", toolkits=["github"])

    emulator_restarts.start()

    with pytest.raises(composio_seam.ComposioNotFound):
        composio_seam.get_session(session.session_id)


def test_concurrent_requests_are_all_kept(
    emulator_restarts: EmulatorRestarts, tmp_path: Path
) -> None:
    state = tmp_path / "emulator.sqlite3"
    emu = emulator_restarts.start(state=state)
    made: list[str] = []
    errors: list[BaseException] = []

    def create(n: int) -> None:
        try:
            with httpx.Client(
                base_url=emu.base_url, headers={"x-api-key": EMULATOR_KEY}, timeout=10
            ) as http:
                for k in range(3):
                    answer = http.post(
                        "/api/v3.1/tool_router/session",
                        json={"user_id": f"usr_{n}_{k}", "toolkits": {"enable": ["github"]}},
                    )
                    answer.raise_for_status()
                    made.append(answer.json()["session_id"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    run_together(*[lambda n=n: create(n) for n in range(8)])

    assert errors == []
    again = emulator_restarts.start(state=state)
    assert sorted(again.sessions) == sorted(made)
    assert len(made) == 24


def test_config_history_survives_a_restart_and_reset_forgets_it(
    emulator_restarts: EmulatorRestarts, tmp_path: Path
) -> None:
    state = tmp_path / "emulator.sqlite3"
    first = emulator_restarts.start(state=state)
    made = composio_seam.create_session(user_id="usr_a", toolkits=["github"])
    composio_seam.update_session_toolkits(
        session_id=made.session_id, toolkits=["gmail"], expected_config_version=1
    )
    url = f"/api/v3.1/tool_router/session/{made.session_id}/config_history"
    with httpx.Client(base_url=first.base_url, headers={"x-api-key": EMULATOR_KEY}) as http:
        before = http.get(url).json()

    second = emulator_restarts.start(state=state)

    with httpx.Client(base_url=second.base_url, headers={"x-api-key": EMULATOR_KEY}) as http:
        after = http.get(url)
        assert after.json() == before
        assert [i["version"] for i in after.json()["items"]] == [2, 1]
        assert [i["config"]["toolkits"] for i in after.json()["items"]] == [
            {"enabled": ["gmail"]},
            {"enabled": ["github"]},
        ]
        assert_answers("session.config_history", after)
        composio_seam.update_session_toolkits(
            session_id=made.session_id, toolkits=["slack"], expected_config_version=2
        )
        assert [i["version"] for i in http.get(url).json()["items"]] == [3, 2, 1]
        EmulatorControl(second.base_url).reset()

    third = emulator_restarts.start(state=state)
    assert third._config_history == {}
    assert third.sessions == {}


def test_the_state_file_is_sqlite_in_wal_mode_and_reset_empties_it(
    emulator_restarts: EmulatorRestarts, tmp_path: Path
) -> None:
    state = tmp_path / "emulator.sqlite3"
    emu = emulator_restarts.start(state=state)
    composio_seam.create_session(user_id="usr_a", toolkits=["github"])
    with sqlite3.connect(state) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        kinds = conn.execute("SELECT kind FROM emulator_records ORDER BY kind").fetchall()
        assert kinds == [("config_history",), ("session",)]

    EmulatorControl(emu.base_url).reset()

    with sqlite3.connect(state) as conn:
        assert conn.execute("SELECT count(*) FROM emulator_records").fetchone() == (0,)
    assert emulator_restarts.start(state=state).sessions == {}


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda p: p.write_bytes(b"this is not sqlite" * 100), "corrupt or cannot be written"),
        (lambda p: p.mkdir(), "is a directory"),
        (
            lambda p: (
                sqlite3.connect(p).execute("CREATE TABLE auth_user (id INT)").connection.commit()
            ),
            "not an emulator state file",
        ),
    ],
    ids=["corrupt", "directory", "another-database"],
)
def test_a_state_file_it_cannot_use_is_a_clear_error_at_start(
    emulator_restarts: EmulatorRestarts, tmp_path: Path, make, why: str
) -> None:
    state = tmp_path / "emulator.sqlite3"
    make(state)

    with pytest.raises(StateFileError, match=why) as caught:
        emulator_restarts.start(state=state)

    assert str(state) in str(caught.value)
    assert emulator_restarts.running is None


def test_an_unwritable_state_file_is_a_clear_error_at_start(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")

    with pytest.raises(StateFileError, match="cannot be opened"):
        EmulatorStore(not_a_folder / "emulator.sqlite3")


def test_the_command_refuses_a_state_file_it_cannot_use(tmp_path: Path) -> None:
    state = tmp_path / "emulator.sqlite3"
    state.write_bytes(b"garbage" * 100)

    with pytest.raises(CommandError, match="corrupt or cannot be written"):
        call_command("composio_emulator", "--port", "0", "--state", str(state))


def test_a_failed_write_answers_500_and_changes_nothing(
    emulator_restarts: EmulatorRestarts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "emulator.sqlite3"
    emu = emulator_restarts.start(state=state)
    kept = composio_seam.create_session(user_id="usr_a", toolkits=["github"])

    def disk_full(self: EmulatorStore, changes: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(EmulatorStore, "apply", disk_full)
    with httpx.Client(base_url=emu.base_url, headers={"x-api-key": EMULATOR_KEY}, timeout=5) as h:
        created = h.post("/api/v3.1/tool_router/session", json={"user_id": "usr_b"})
        deleted = h.delete(f"/api/v3.1/tool_router/session/{kept.session_id}")
        patched = h.patch(
            f"/api/v3.1/tool_router/session/{kept.session_id}",
            json={"toolkits": {"enable": ["gmail"]}},
        )

    assert [created.status_code, deleted.status_code, patched.status_code] == [500, 500, 500]
    assert list(emu.sessions) == [kept.session_id]
    assert emu.sessions[kept.session_id]["config_version"] == 1
    monkeypatch.undo()
    assert list(emulator_restarts.start(state=state).sessions) == [kept.session_id]


def test_accounts_auth_configs_and_execution_logs_survive_a_restart(
    emulator_restarts: EmulatorRestarts, tmp_path: Path
) -> None:
    state = tmp_path / "emulator.sqlite3"
    first = emulator_restarts.start(state=state)
    session = composio_seam.create_session(user_id="usr_a", toolkits=["github", "gmail"])
    link = _link(first.base_url, session.session_id, "github")
    httpx.get(link["redirect_url"], params={"decision": "allow"}, timeout=5).raise_for_status()
    control = EmulatorControl(first.base_url)
    expired = control.create_account("usr_a", "gmail", "EXPIRED", status_reason="token expired")
    with httpx.Client(base_url=first.base_url, headers={"x-api-key": EMULATOR_KEY}) as http:
        ran = http.post(
            f"/api/v3.1/tool_router/session/{session.session_id}/execute",
            json={"tool_slug": "GITHUB_GET_THE_AUTHENTICATED_USER"},
        ).json()
        before = {
            "accounts": http.get("/api/v3.1/connected_accounts").json()["items"],
            "configs": http.get("/api/v3.1/auth_configs").json()["items"],
            "logs": http.post("/api/v3.1/logs/tool_execution", json={}).json()["logs"],
        }

    second = emulator_restarts.start(state=state)

    with httpx.Client(base_url=second.base_url, headers={"x-api-key": EMULATOR_KEY}) as http:
        after = {
            "accounts": http.get("/api/v3.1/connected_accounts").json()["items"],
            "configs": http.get("/api/v3.1/auth_configs").json()["items"],
            "logs": http.post("/api/v3.1/logs/tool_execution", json={}).json()["logs"],
        }
        entry = http.get(f"/api/v3.1/logs/tool_execution/{ran['log_id']}").json()
    assert after == before
    assert {a["id"]: a["status"] for a in after["accounts"]} == {
        link["connected_account_id"]: "ACTIVE",
        expired["id"]: "EXPIRED",
    }
    assert entry["context"]["session_id"] == session.session_id
    connections = {c.slug: c.status for c in composio_seam.session_connections(session.session_id)}
    assert connections == {"github": "ACTIVE", "gmail": "EXPIRED"}


def test_accounts_an_older_state_file_kept_in_sessions_become_the_users_accounts(
    emulator_restarts: EmulatorRestarts, tmp_path: Path
) -> None:
    state = tmp_path / "emulator.sqlite3"
    first = emulator_restarts.start(state=state)
    session = composio_seam.create_session(user_id="usr_old", toolkits=["github"])
    emulator_restarts.stop()
    store = EmulatorStore(state)
    stored = store.load("session")[session.session_id]
    old_account = {
        "id": "ca_oldstyle0001",
        "user_id": "usr_old",
        "status": "ACTIVE",
        "created_at": "2025-07-29T00:00:00.000Z",
        "auth_config": {"id": "ac_random01", "auth_scheme": "OAUTH2", "is_composio_managed": True},
    }
    store.put("session", session.session_id, {**stored, "connections": {"github": old_account}})
    store.close()

    again = emulator_restarts.start(state=state)

    assert again is not first
    (github,) = composio_seam.session_connections(session.session_id)
    assert (github.status, github.connected_account_id) == ("ACTIVE", "ca_oldstyle0001")
    assert "connections" not in again.sessions[session.session_id]
    assert "connections" not in EmulatorStore(state).load("session")[session.session_id]
