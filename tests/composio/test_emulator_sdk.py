"""Smoke tests of the Composio emulator with the real `composio` SDK: sessions, toolkits, and the
SDK's exceptions for the emulator's errors. No database.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from sessions_app.composio.emulator import Emulator
from tests.factories import EMULATOR_KEY


@pytest.fixture(scope="module")
def composio_module() -> Any:
    # Telemetry would post to the internet from a thread; silence it before first use.
    import composio.core.models.base as base

    base.push_event = lambda *a, **k: None
    import composio

    return composio


@pytest.fixture
def sdk(composio_module: Any, emu: Emulator) -> Any:
    return composio_module.Composio(
        api_key=EMULATOR_KEY, base_url=emu.base_url, timeout=5, max_retries=0, allow_tracking=False
    )


def test_sdk_creates_uses_updates_and_deletes_a_session(emu: Emulator, sdk: Any) -> None:
    from composio.exceptions import SessionConfigConflictError

    session = sdk.create(user_id="u1", toolkits=["github"])

    assert session.session_id.startswith("trs_")
    assert session.mcp.url.startswith(emu.base_url + "/tool_router/")
    assert session.config_version == 1
    (sent,) = [r for r in emu.requests if r.endpoint == "session.create"]
    assert sent.json == {
        "user_id": "u1",
        "toolkits": {"enable": ["github"]},
        "manage_connections": {"enable": True},
    }

    fetched = sdk.use(session.session_id)
    config = fetched.update(
        toolkits={"enable": ["github", "gmail"]}, expected_config_version=fetched.config_version
    )
    assert config.toolkits.enabled == ["github", "gmail"]
    assert fetched.config_version == 2

    with pytest.raises(SessionConfigConflictError):
        session.update(toolkits={"enable": ["slack"]}, expected_config_version=1)

    assert sdk.sessions.delete(session.session_id) == {
        "session_id": session.session_id,
        "deleted": True,
    }
    assert session.session_id not in emu.sessions


def test_sdk_reads_session_toolkits(emu: Emulator, sdk: Any) -> None:
    session = sdk.create(user_id="u1", toolkits=["github", "gmail", "hackernews"])
    emu.set_connection(session.session_id, "github", "ACTIVE")

    first = session.toolkits(limit=2)
    rest = session.toolkits(limit=2, next_cursor=first.next_cursor)

    assert [t.slug for t in first.items] == ["github", "gmail"]
    assert first.items[0].connection.is_active is True
    assert first.items[1].connection.is_active is False
    assert [t.slug for t in rest.items] == ["hackernews"]
    assert rest.items[0].connection is None  # no-auth toolkit
    assert rest.next_cursor is None


def test_sdk_lists_the_catalog_following_next_cursor(sdk: Any) -> None:
    slugs: list[str] = []
    cursor = None
    while True:
        page = sdk.toolkits.list(limit=80, cursor=cursor)
        slugs.extend(item.slug for item in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break

    assert len(slugs) == 198 == len(set(slugs))
    assert page.total_items == 198
    assert sdk.toolkits.get("github").slug == "github"
    assert len(sdk.toolkits.get()) == 20


def test_sdk_maps_emulator_errors_to_its_exceptions(emu: Emulator, sdk: Any) -> None:
    import composio_client

    with pytest.raises(composio_client.NotFoundError):
        sdk.toolkits.get("no_such_kit")
    with pytest.raises(composio_client.NotFoundError):
        sdk.use("trs_missing")
    with pytest.raises(composio_client.BadRequestError):
        sdk.create(user_id="u1", toolkits=["no_such_kit"])

    emu.faults.enqueue(429, endpoint="session.create", retry_after=1)
    with pytest.raises(composio_client.RateLimitError):
        sdk.create(user_id="u1", toolkits=["github"])

    emu.faults.malformed(endpoint="toolkits.list")
    with pytest.raises(composio_client.APIResponseValidationError):
        sdk.toolkits.list(limit=5)

    emu.faults.drop(endpoint="toolkits.list")
    with pytest.raises(composio_client.APIConnectionError):
        sdk.toolkits.list(limit=5)

    emu.faults.latency(1.0, endpoint="toolkits.get")
    fast = sdk.client.with_options(timeout=0.2)
    with pytest.raises(composio_client.APITimeoutError):
        fast.toolkits.retrieve("github")
    # The server still holds that request for the rest of its delay; let it finish here, or it
    # would take a later test's queued fault on the shared emulator.
    time.sleep(1.0)


def test_sdk_rejects_a_wrong_key(composio_module: Any, emu: Emulator) -> None:
    import composio_client

    client = composio_module.Composio(
        api_key="wrong", base_url=emu.base_url, timeout=5, max_retries=0, allow_tracking=False
    )

    with pytest.raises(composio_client.AuthenticationError):
        client.create(user_id="u1", toolkits=["github"])
