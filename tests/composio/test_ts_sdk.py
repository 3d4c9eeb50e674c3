"""Composio's own TypeScript SDK (`@composio/core`, pinned in tests/ts_sdk/package-lock.json) drives
the emulator unchanged: it creates a tool router session, reads it back, lists the session's
toolkits, the catalog, one toolkit and the categories, and deletes the session.

Needs `node` and `npm ci` run in tests/ts_sdk (`.ci/run` does it when npm is there); skipped,
saying which is missing, otherwise. No database.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from sessions_app.composio.emulator import Emulator
from tests.factories import EMULATOR_KEY, PROJECT_ROOT

TS_DIR = PROJECT_ROOT / "tests" / "ts_sdk"


def run_check(emu: Emulator) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the TypeScript SDK check needs Node.js 20 or later")
    if not (TS_DIR / "node_modules" / "@composio" / "core").is_dir():
        pytest.skip("tests/ts_sdk/node_modules is missing: run `npm ci` in tests/ts_sdk")
    env = {
        **os.environ,
        "COMPOSIO_BASE_URL": emu.base_url,
        "COMPOSIO_API_KEY": EMULATOR_KEY,
        "COMPOSIO_LOG_LEVEL": "info",
    }
    return subprocess.run(
        [node, "check.mjs"], cwd=TS_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_typescript_sdk_drives_the_emulator_unchanged(emu: Emulator) -> None:
    result = run_check(emu)

    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    session_id = seen["created"]["sessionId"]
    assert session_id.startswith("trs_")
    assert seen["created"]["mcpUrl"] == f"{emu.base_url}/tool_router/{session_id}/mcp"
    assert seen["fetched"] == {"sessionId": session_id}
    assert seen["sessionToolkits"] == ["github", "gmail"]
    assert seen["catalog"] == [tk["slug"] for tk in emu.catalog[:5]]
    assert seen["github"] == "github"
    assert seen["categories"] > 0
    assert seen["deleted"] == {"sessionId": session_id, "deleted": True}
    assert emu.sessions == {}
    # Every request was one the emulator knows, with the key, and passed its contract.
    assert [r.endpoint for r in emu.requests] == [
        "session.create",
        "session.get",
        "session.toolkits",
        "toolkits.list",
        "toolkits.get",
        "toolkits.categories",
        "session.delete",
    ]
    assert all(r.authenticated for r in emu.requests)
    (create,) = [r for r in emu.requests if r.endpoint == "session.create"]
    assert create.json["user_id"] == "ts_user_1"
    assert create.json["toolkits"] == {"enable": ["github", "gmail"]}
    # The SDK validates what it reads: a field it cannot parse is logged, not raised.
    assert "validation failed" not in (result.stdout + result.stderr).lower()
