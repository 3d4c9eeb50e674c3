"""The Composio emulator's faults: latency, enqueued errors, malformed and truncated answers,
dropped connections, held requests, and reset. No database.
"""

from __future__ import annotations

import json
import threading
import time
from http import HTTPStatus

import httpx
import pytest

from sessions_app.composio.emulator import Emulator
from tests.factories import EMULATOR_KEY
from tests.helpers import SESSION_URL, TOOLKITS_URL, assert_emulator_error, emulator_create


def test_latency_makes_a_short_client_timeout_fire(emu: Emulator, emu_http: httpx.Client) -> None:
    emu.faults.latency(0.5, endpoint="toolkits.list")

    with pytest.raises(httpx.ReadTimeout):
        emu_http.get(TOOLKITS_URL, timeout=0.1)

    assert emu.count("toolkits.list") == 1  # recorded on arrival, before the delay
    assert emu_http.post(SESSION_URL, json={"user_id": "u"}, timeout=0.4).status_code == 201
    # The server still holds the timed-out request for the rest of its delay. Let it finish
    # here: waking later, it would take the next test's queued fault on the shared emulator.
    time.sleep(0.5)


def test_enqueued_429_carries_retry_after(emu: Emulator, emu_http: httpx.Client) -> None:
    emu.faults.enqueue(429, endpoint="session.create", retry_after=2)

    response = emu_http.post(SESSION_URL, json={"user_id": "u1"})

    assert_emulator_error(response, HTTPStatus.TOO_MANY_REQUESTS, "HTTP_TooManyRequests")
    assert response.headers["retry-after"] == "2"
    assert emu.sessions == {}
    assert emu_http.post(SESSION_URL, json={"user_id": "u1"}).status_code == HTTPStatus.CREATED


@pytest.mark.parametrize("status", [500, 502, 503])
def test_enqueued_server_errors(emu: Emulator, emu_http: httpx.Client, status: int) -> None:
    emu.faults.enqueue(status, times=2)

    assert_emulator_error(emu_http.get(TOOLKITS_URL), status)
    assert_emulator_error(emu_http.get(f"{TOOLKITS_URL}/github"), status)
    assert emu_http.get(TOOLKITS_URL).status_code == HTTPStatus.OK


def test_faults_target_one_endpoint(emu: Emulator, emu_http: httpx.Client) -> None:
    emu.faults.enqueue(503, endpoint="session.create")

    assert emu_http.get(TOOLKITS_URL).status_code == HTTPStatus.OK
    assert_emulator_error(
        emu_http.post(SESSION_URL, json={"user_id": "u1"}), HTTPStatus.SERVICE_UNAVAILABLE
    )


def test_faults_apply_before_the_key_check(emu: Emulator) -> None:
    emu.faults.enqueue(503)

    response = httpx.get(emu.base_url + TOOLKITS_URL)

    assert_emulator_error(response, HTTPStatus.SERVICE_UNAVAILABLE)
    assert_emulator_error(httpx.get(emu.base_url + TOOLKITS_URL), HTTPStatus.UNAUTHORIZED)


def test_malformed_answers_success_with_a_non_json_body(
    emu: Emulator, emu_http: httpx.Client
) -> None:
    emu.faults.malformed(endpoint="session.create")

    response = emu_http.post(SESSION_URL, json={"user_id": "u1"})

    assert response.status_code == HTTPStatus.CREATED
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert emu.sessions == {}


def test_truncated_cuts_the_body_after_doing_the_work(
    emu: Emulator, emu_http: httpx.Client
) -> None:
    emu.faults.truncated(endpoint="session.create")

    with pytest.raises(httpx.RemoteProtocolError):
        emu_http.post(SESSION_URL, json={"user_id": "u1"})

    assert len(emu.sessions) == 1  # the orphan a client must be ready for
    assert emu_http.get(TOOLKITS_URL).status_code == HTTPStatus.OK


def test_drop_closes_the_connection_without_answering(
    emu: Emulator, emu_http: httpx.Client
) -> None:
    emu.faults.drop(endpoint="toolkits.list")

    with pytest.raises(httpx.RemoteProtocolError):
        emu_http.get(TOOLKITS_URL)

    assert emu.count("toolkits.list") == 1
    assert emu_http.get(TOOLKITS_URL).status_code == HTTPStatus.OK


def test_hold_blocks_requests_until_the_event_is_set(emu: Emulator) -> None:
    release = threading.Event()
    emu.faults.hold("session.create", release)
    results: list[int] = []

    def post() -> None:
        response = httpx.post(
            emu.base_url + SESSION_URL, json={"user_id": "u1"}, headers={"x-api-key": EMULATOR_KEY}
        )
        results.append(response.status_code)

    threads = [threading.Thread(target=post) for _ in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while emu.count("session.create") < 3 and time.monotonic() < deadline:
        time.sleep(0.01)

    assert emu.count("session.create") == 3
    assert results == []
    assert emu.sessions == {}

    release.set()
    for thread in threads:
        thread.join(timeout=5)

    assert results == [201, 201, 201]
    assert len(emu.sessions) == 3


def test_reset_forgets_sessions_requests_and_faults(emu: Emulator, emu_http: httpx.Client) -> None:
    emulator_create(emu_http)
    emu.faults.enqueue(500)

    emu.reset()

    assert emu.sessions == {}
    assert emu.requests == []
    assert emu_http.get(TOOLKITS_URL).status_code == HTTPStatus.OK
    assert len(emu.catalog) == 198
