"""The Composio emulator's control API (faults, request log, connections, reset over HTTP) and the
`composio_emulator` command's loopback check.
"""

from __future__ import annotations

import json
import time
from http import HTTPStatus

import httpx
import pytest

from sessions_app.composio.emulator import Emulator, EmulatorControl, EmulatorControlError
from tests.factories import EMULATOR_KEY
from tests.helpers import TOOLKITS_URL, emulator_create

# Control API ----------------------------------------------------------------------------


def test_control_api_round_trip(emu: Emulator, emu_http: httpx.Client) -> None:
    control = EmulatorControl(emu.base_url)

    assert control.health()["status"] == "ok"
    control.enqueue(429, endpoint="toolkits.list", retry_after=3)
    limited = emu_http.get(TOOLKITS_URL)
    assert limited.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert limited.headers["retry-after"] == "3"

    control.latency(0.3, endpoint="toolkits.list")
    with pytest.raises(httpx.ReadTimeout):
        emu_http.get(TOOLKITS_URL, timeout=0.05)
    time.sleep(0.3)  # let the server finish the timed-out request before faults change again
    control.clear_faults()
    assert emu_http.get(TOOLKITS_URL).status_code == HTTPStatus.OK

    summary = control.requests("toolkits.list")
    assert summary["total"] == 3 == control.count("toolkits.list")
    assert EMULATOR_KEY not in json.dumps(summary)
    assert all(r["authenticated"] for r in summary["requests"])

    session_id = emulator_create(emu_http)["session_id"]
    control.set_connection(session_id, "github", "ACTIVE")
    assert emu.session_account(session_id, "github")["status"] == "ACTIVE"

    control.reset()
    assert control.health()["requests"] == 0
    assert emu.sessions == {}


def test_control_api_rejects_an_unknown_fault_kind(emu: Emulator) -> None:
    with pytest.raises(EmulatorControlError) as excinfo:
        EmulatorControl(emu.base_url).add_fault("explode")

    assert excinfo.value.status == HTTPStatus.BAD_REQUEST


def test_control_requests_are_not_recorded_as_api_requests(emu: Emulator) -> None:
    EmulatorControl(emu.base_url).health()

    assert emu.requests == []


# Management command ---------------------------------------------------------------------


def test_command_refuses_a_non_loopback_host() -> None:
    pytest.importorskip("django")
    from django.conf import settings

    if not settings.configured:
        pytest.skip("Django settings are not configured")
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="non-loopback"):
        call_command("composio_emulator", "--host", "0.0.0.0")


def test_command_loopback_check() -> None:
    pytest.importorskip("django")
    from sessions_app.management.commands.composio_emulator import is_loopback

    assert is_loopback("127.0.0.1")
    assert is_loopback("127.1.2.3")
    assert is_loopback("localhost")
    assert is_loopback("::1")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("10.0.0.1")
    assert not is_loopback("example.com")
