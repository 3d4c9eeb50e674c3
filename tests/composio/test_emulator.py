"""The Composio emulator: wire shapes and status codes over raw HTTP, faults, the control API,
and smoke tests with the real `composio` SDK. No database."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from sessions_app.composio.emulator import Emulator, EmulatorControl, EmulatorControlError
from sessions_app.composio.emulator.catalog import load_catalog

KEY = "emu-test-key"
SESSION_URL = "/api/v3.1/tool_router/session"
TOOLKITS_URL = "/api/v3.1/toolkits"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    emulator = Emulator(api_key=KEY, host="127.0.0.1", port=0).start()
    yield emulator
    emulator.stop()


@pytest.fixture(autouse=True)
def _clean(emu: Emulator) -> Iterator[None]:
    emu.reset()
    yield
    emu.faults.clear()


@pytest.fixture
def http(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers={"x-api-key": KEY}, timeout=5) as client:
        yield client


def create(http: httpx.Client, **body: Any) -> dict[str, Any]:
    body.setdefault("user_id", "u1")
    response = http.post(SESSION_URL, json=body)
    assert response.status_code == HTTPStatus.CREATED, response.text
    return response.json()


def assert_error(response: httpx.Response, status: int, slug: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status
    assert {"message", "code", "slug", "request_id"} <= set(error)
    assert error["request_id"] == response.headers["x-request-id"]
    if slug is not None:
        assert error["slug"] == slug
    return error


# Sessions -------------------------------------------------------------------------------


def test_create_answers_201_with_the_documented_shape(emu: Emulator, http: httpx.Client) -> None:
    response = http.post(
        SESSION_URL,
        json={
            "user_id": "u_1",
            "toolkits": {"enable": ["github", "gmail"]},
            "manage_connections": {"enable": True},
        },
    )

    assert response.status_code == HTTPStatus.CREATED
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    session_id = body["session_id"]
    assert session_id.startswith("trs_")
    assert body["mcp"] == {"type": "http", "url": f"{emu.base_url}/tool_router/{session_id}/mcp"}
    assert body["tool_router_tools"] == [
        "COMPOSIO_SEARCH_TOOLS",
        "COMPOSIO_MULTI_EXECUTE_TOOL",
        "COMPOSIO_MANAGE_CONNECTIONS",
    ]
    assert body["config_version"] == 1
    assert body["config"] == {
        "user_id": "u_1",
        "toolkits": {"enabled": ["github", "gmail"]},
        "manage_connections": {"enabled": True, "callback_url": None},
        "auth_configs": {},
        "connected_accounts": {},
        "tools": None,
        "tags": None,
        "execute": {"enable_multi_execute": True},
        "search": {"enable": True},
        "preload": {"tools": []},
        "instant": False,
    }
    assert emu.sessions[session_id]["config"]["toolkits"] == {"enabled": ["github", "gmail"]}


def test_requests_say_enable_and_responses_say_enabled(http: httpx.Client) -> None:
    body = create(http, toolkits={"disable": ["slack"]}, manage_connections={"enable": False})

    assert body["config"]["toolkits"] == {"disabled": ["slack"]}
    assert body["config"]["manage_connections"]["enabled"] is False
    assert "COMPOSIO_MANAGE_CONNECTIONS" not in body["tool_router_tools"]


def test_it_normalizes_and_deduplicates_enabled_slugs(http: httpx.Client) -> None:
    body = create(http, toolkits={"enable": ["GitHub", "github", "gmail"]})

    assert body["config"]["toolkits"] == {"enabled": ["github", "gmail"]}


def test_an_empty_enable_list_means_deny_all(http: httpx.Client) -> None:
    body = create(http, toolkits={"enable": []})
    toolkits = http.get(f"{SESSION_URL}/{body['session_id']}/toolkits").json()

    assert body["config"]["toolkits"] == {"enabled": []}
    assert toolkits["items"] == []
    assert toolkits["total_items"] == 0


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong-key"}], ids=["missing", "wrong"])
def test_it_answers_401_without_a_valid_api_key(emu: Emulator, headers: dict[str, str]) -> None:
    response = httpx.post(emu.base_url + SESSION_URL, json={"user_id": "u1"}, headers=headers)

    assert_error(response, HTTPStatus.UNAUTHORIZED, "HTTP_Unauthorized")
    assert emu.sessions == {}
    (recorded,) = emu.requests
    assert recorded.authenticated is False
    assert recorded.endpoint == "session.create"


def test_it_never_keeps_the_api_key_value(emu: Emulator, http: httpx.Client) -> None:
    create(http)

    (recorded,) = emu.requests
    assert recorded.authenticated is True
    assert recorded.headers["x-api-key"] == "<redacted>"
    assert KEY not in repr(emu.requests)


@pytest.mark.parametrize(
    "toolkits",
    [
        ["github"],
        [1, 2],
        "github",
        {"enable": "github"},
        {"enable": [1]},
        {"enabled": ["github"]},
        {"enable": ["github"], "disable": ["gmail"]},
        {},
        None,
    ],
)
def test_it_rejects_a_malformed_toolkits_payload(http: httpx.Client, toolkits: Any) -> None:
    response = http.post(SESSION_URL, json={"user_id": "u1", "toolkits": toolkits})

    error = assert_error(response, HTTPStatus.BAD_REQUEST, "HTTP_BadRequest")
    assert error["code"] == 10400
    assert error["errors"] == ["Error in payload.toolkits: Invalid input"]


def test_it_rejects_an_unknown_toolkit_slug_by_name(emu: Emulator, http: httpx.Client) -> None:
    response = http.post(
        SESSION_URL, json={"user_id": "u1", "toolkits": {"enable": ["github", "no_such_kit"]}}
    )

    error = assert_error(response, HTTPStatus.BAD_REQUEST, "HTTP_BadRequest")
    assert "no_such_kit" in error["message"]
    assert "github" not in error["message"]
    assert emu.sessions == {}


@pytest.mark.parametrize("body", [{}, {"user_id": ""}, {"user_id": "  "}, {"user_id": 7}])
def test_it_requires_a_non_empty_user_id(http: httpx.Client, body: dict[str, Any]) -> None:
    response = http.post(SESSION_URL, json=body)

    error = assert_error(response, HTTPStatus.BAD_REQUEST)
    assert error["errors"][0].startswith("Error in payload.user_id")


def test_get_returns_the_same_shape_as_create(http: httpx.Client) -> None:
    created = create(http, toolkits={"enable": ["github"]})

    response = http.get(f"{SESSION_URL}/{created['session_id']}")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == created


def test_patch_changes_config_and_bumps_the_version(http: httpx.Client) -> None:
    created = create(http, toolkits={"enable": ["github"]})
    url = f"{SESSION_URL}/{created['session_id']}"

    response = http.patch(
        url, json={"toolkits": {"enable": ["gmail"]}, "expected_config_version": 1}
    )

    assert response.status_code == HTTPStatus.OK
    assert response.json()["config_version"] == 2
    assert response.json()["config"]["toolkits"] == {"enabled": ["gmail"]}
    assert http.get(url).json()["config_version"] == 2


def test_patch_with_a_stale_config_version_answers_409(emu: Emulator, http: httpx.Client) -> None:
    created = create(http, toolkits={"enable": ["github"]})
    url = f"{SESSION_URL}/{created['session_id']}"
    http.patch(url, json={"toolkits": {"enable": ["gmail"]}})

    response = http.patch(
        url, json={"toolkits": {"enable": ["slack"]}, "expected_config_version": 1}
    )

    assert_error(response, HTTPStatus.CONFLICT, "ToolRouterV2_SessionConfigConflict")
    assert emu.sessions[created["session_id"]]["config"]["toolkits"] == {"enabled": ["gmail"]}
    assert emu.sessions[created["session_id"]]["config_version"] == 2


def test_patch_validates_toolkits_like_create(http: httpx.Client) -> None:
    created = create(http)

    response = http.patch(f"{SESSION_URL}/{created['session_id']}", json={"toolkits": ["github"]})

    assert_error(response, HTTPStatus.BAD_REQUEST, "HTTP_BadRequest")


def test_delete_answers_deleted_then_404(emu: Emulator, http: httpx.Client) -> None:
    session_id = create(http)["session_id"]
    url = f"{SESSION_URL}/{session_id}"

    response = http.delete(url)

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"session_id": session_id, "deleted": True}
    assert session_id not in emu.sessions
    assert_error(http.delete(url), HTTPStatus.NOT_FOUND, "ToolRouterV2_SessionNotFound")
    assert_error(http.get(url), HTTPStatus.NOT_FOUND, "ToolRouterV2_SessionNotFound")
    assert_error(http.patch(url, json={}), HTTPStatus.NOT_FOUND, "ToolRouterV2_SessionNotFound")


def test_unknown_paths_answer_404_with_the_envelope(emu: Emulator, http: httpx.Client) -> None:
    assert_error(http.get("/api/v3.1/nothing/here"), HTTPStatus.NOT_FOUND, "HTTP_NotFound")
    assert emu.count("unknown") == 1


# Toolkit catalog ------------------------------------------------------------------------


def test_toolkit_list_pages_through_the_whole_catalog(emu: Emulator, http: httpx.Client) -> None:
    slugs: list[str] = []
    pages = []
    params: dict[str, Any] = {"limit": 50}
    while True:
        body = http.get(TOOLKITS_URL, params=params).json()
        pages.append(body)
        slugs.extend(item["slug"] for item in body["items"])
        if body["next_cursor"] is None:
            break
        params = {"limit": 50, "cursor": body["next_cursor"]}

    assert len(pages) == 4
    assert [p["current_page"] for p in pages] == [1, 2, 3, 4]
    assert {p["total_items"] for p in pages} == {198}
    assert {p["total_pages"] for p in pages} == {4}
    assert [len(p["items"]) for p in pages] == [50, 50, 50, 48]
    assert slugs == [tk["slug"] for tk in emu.catalog]


def test_toolkit_list_items_have_the_api_shape(http: httpx.Client) -> None:
    body = http.get(TOOLKITS_URL, params={"search": "github", "limit": 1}).json()

    item = body["items"][0]
    assert item["slug"] == "github"
    assert {
        "name",
        "auth_schemes",
        "composio_managed_auth_schemes",
        "no_auth",
        "deprecated",
    } <= set(item)
    assert item["is_local_toolkit"] is False
    assert item["type"] == "native"
    meta = item["meta"]
    assert {"description", "logo", "categories", "tools_count", "triggers_count"} <= set(meta)
    assert all(set(c) == {"id", "name"} for c in meta["categories"])


def test_toolkit_list_defaults_to_20_and_allows_1000(http: httpx.Client) -> None:
    assert len(http.get(TOOLKITS_URL).json()["items"]) == 20

    body = http.get(TOOLKITS_URL, params={"limit": 1000}).json()

    assert len(body["items"]) == 198
    assert body["next_cursor"] is None
    assert body["total_pages"] == 1


@pytest.mark.parametrize("limit", ["1001", "0", "-1", "abc", "2.5"])
def test_toolkit_list_rejects_a_bad_limit(http: httpx.Client, limit: str) -> None:
    assert_error(http.get(TOOLKITS_URL, params={"limit": limit}), HTTPStatus.BAD_REQUEST)


def test_toolkit_list_rejects_a_garbage_cursor(http: httpx.Client) -> None:
    assert_error(http.get(TOOLKITS_URL, params={"cursor": "%%%"}), HTTPStatus.BAD_REQUEST)


def test_toolkit_list_ignores_unknown_query_params(http: httpx.Client) -> None:
    response = http.get(TOOLKITS_URL, params={"toolkit_versions": "latest", "whatever": "1"})

    assert response.status_code == HTTPStatus.OK


def test_toolkit_list_filters_by_category(http: httpx.Client) -> None:
    body = http.get(TOOLKITS_URL, params={"category": "crm", "limit": 1000}).json()

    assert body["total_items"] > 0
    assert all("crm" in [c["id"] for c in item["meta"]["categories"]] for item in body["items"])


def test_toolkit_get_answers_detail_or_404(http: httpx.Client) -> None:
    response = http.get(f"{TOOLKITS_URL}/github")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["slug"] == "github"
    assert response.json()["meta"]["categories"]

    assert_error(http.get(f"{TOOLKITS_URL}/no_such_kit"), HTTPStatus.NOT_FOUND)


def test_set_catalog_makes_toolkits_vanish(emu: Emulator, http: httpx.Client) -> None:
    emu.set_catalog([{"slug": "github", "name": "GitHub"}, {"slug": "gmail"}])
    try:
        body = http.get(TOOLKITS_URL).json()
        assert [i["slug"] for i in body["items"]] == ["github", "gmail"]
        assert_error(http.get(f"{TOOLKITS_URL}/slack"), HTTPStatus.NOT_FOUND)
        response = http.post(SESSION_URL, json={"user_id": "u", "toolkits": {"enable": ["slack"]}})
        assert_error(response, HTTPStatus.BAD_REQUEST)
    finally:
        emu.set_catalog(load_catalog())


# Session toolkits and connections -------------------------------------------------------


def test_session_toolkits_paginate_and_show_connection_state(
    emu: Emulator, http: httpx.Client
) -> None:
    session_id = create(http, toolkits={"enable": ["github", "gmail", "slack"]})["session_id"]
    url = f"{SESSION_URL}/{session_id}/toolkits"
    emu.set_connection(session_id, "gmail", "ACTIVE")
    emu.set_connection(session_id, "slack", "EXPIRED")

    first = http.get(url, params={"limit": 2}).json()
    second = http.get(url, params={"limit": 2, "cursor": first["next_cursor"]}).json()

    assert [i["slug"] for i in first["items"]] == ["github", "gmail"]
    assert [i["slug"] for i in second["items"]] == ["slack"]
    assert second["next_cursor"] is None
    assert first["total_items"] == 3
    github, gmail = first["items"]
    assert github["connected_account"] is None
    assert github["is_no_auth"] is False
    assert gmail["connected_account"]["status"] == "ACTIVE"
    assert gmail["connected_account"]["id"].startswith("ca_")
    assert gmail["connected_account"]["user_id"] == "u1"
    assert second["items"][0]["connected_account"]["status"] == "EXPIRED"


def test_session_toolkits_filters(emu: Emulator, http: httpx.Client) -> None:
    session_id = create(http, toolkits={"enable": ["github", "gmail", "slack"]})["session_id"]
    url = f"{SESSION_URL}/{session_id}/toolkits"
    emu.set_connection(session_id, "gmail", "ACTIVE")
    emu.set_connection(session_id, "slack", "INITIATED")

    connected = http.get(url, params={"is_connected": "true"}).json()
    only = http.get(url, params={"toolkits": "slack,github"}).json()
    found = http.get(url, params={"search": "gmai"}).json()

    assert [i["slug"] for i in connected["items"]] == ["gmail"]
    assert [i["slug"] for i in only["items"]] == ["slack", "github"]
    assert [i["slug"] for i in found["items"]] == ["gmail"]


def test_session_toolkits_limit_is_capped_at_50(http: httpx.Client) -> None:
    session_id = create(http)["session_id"]

    response = http.get(f"{SESSION_URL}/{session_id}/toolkits", params={"limit": 51})

    assert_error(response, HTTPStatus.BAD_REQUEST)


def test_set_connection_none_removes_the_account(emu: Emulator, http: httpx.Client) -> None:
    session_id = create(http, toolkits={"enable": ["github"]})["session_id"]
    emu.set_connection(session_id, "github", "ACTIVE")
    emu.set_connection(session_id, "github", None)

    body = http.get(f"{SESSION_URL}/{session_id}/toolkits").json()

    assert body["items"][0]["connected_account"] is None


def test_link_initiates_a_connection_and_its_page_completes_it(
    emu: Emulator, http: httpx.Client
) -> None:
    session_id = create(http, toolkits={"enable": ["github"]})["session_id"]

    response = http.post(
        f"{SESSION_URL}/{session_id}/link",
        json={"toolkit": "github", "callback_url": "https://console.test/done"},
    )

    assert response.status_code == HTTPStatus.CREATED
    link = response.json()
    assert set(link) == {"link_token", "redirect_url", "connected_account_id"}
    assert link["redirect_url"].startswith(emu.base_url)
    account = emu.sessions[session_id]["connections"]["github"]
    assert account == {**account, "status": "INITIATED", "id": link["connected_account_id"]}

    page = httpx.get(link["redirect_url"])

    assert page.status_code == HTTPStatus.FOUND
    assert page.headers["location"].startswith("https://console.test/done?status=success")
    assert emu.sessions[session_id]["connections"]["github"]["status"] == "ACTIVE"


def test_link_rejects_a_toolkit_outside_the_session(http: httpx.Client) -> None:
    session_id = create(http, toolkits={"enable": ["github"]})["session_id"]

    response = http.post(f"{SESSION_URL}/{session_id}/link", json={"toolkit": "gmail"})

    assert_error(response, HTTPStatus.BAD_REQUEST)


# Faults ---------------------------------------------------------------------------------


def test_latency_makes_a_short_client_timeout_fire(emu: Emulator, http: httpx.Client) -> None:
    emu.faults.latency(0.5, endpoint="toolkits.list")

    with pytest.raises(httpx.ReadTimeout):
        http.get(TOOLKITS_URL, timeout=0.1)

    assert emu.count("toolkits.list") == 1  # recorded on arrival, before the delay
    assert http.post(SESSION_URL, json={"user_id": "u"}, timeout=0.4).status_code == 201


def test_enqueued_429_carries_retry_after(emu: Emulator, http: httpx.Client) -> None:
    emu.faults.enqueue(429, endpoint="session.create", retry_after=2)

    response = http.post(SESSION_URL, json={"user_id": "u1"})

    assert_error(response, HTTPStatus.TOO_MANY_REQUESTS, "HTTP_TooManyRequests")
    assert response.headers["retry-after"] == "2"
    assert emu.sessions == {}
    assert http.post(SESSION_URL, json={"user_id": "u1"}).status_code == HTTPStatus.CREATED


@pytest.mark.parametrize("status", [500, 502, 503])
def test_enqueued_server_errors(emu: Emulator, http: httpx.Client, status: int) -> None:
    emu.faults.enqueue(status, times=2)

    assert_error(http.get(TOOLKITS_URL), status)
    assert_error(http.get(f"{TOOLKITS_URL}/github"), status)
    assert http.get(TOOLKITS_URL).status_code == HTTPStatus.OK


def test_faults_target_one_endpoint(emu: Emulator, http: httpx.Client) -> None:
    emu.faults.enqueue(503, endpoint="session.create")

    assert http.get(TOOLKITS_URL).status_code == HTTPStatus.OK
    assert_error(http.post(SESSION_URL, json={"user_id": "u1"}), HTTPStatus.SERVICE_UNAVAILABLE)


def test_faults_apply_before_the_key_check(emu: Emulator) -> None:
    emu.faults.enqueue(503)

    response = httpx.get(emu.base_url + TOOLKITS_URL)

    assert_error(response, HTTPStatus.SERVICE_UNAVAILABLE)
    assert_error(httpx.get(emu.base_url + TOOLKITS_URL), HTTPStatus.UNAUTHORIZED)


def test_malformed_answers_success_with_a_non_json_body(emu: Emulator, http: httpx.Client) -> None:
    emu.faults.malformed(endpoint="session.create")

    response = http.post(SESSION_URL, json={"user_id": "u1"})

    assert response.status_code == HTTPStatus.CREATED
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert emu.sessions == {}


def test_truncated_cuts_the_body_after_doing_the_work(emu: Emulator, http: httpx.Client) -> None:
    emu.faults.truncated(endpoint="session.create")

    with pytest.raises(httpx.RemoteProtocolError):
        http.post(SESSION_URL, json={"user_id": "u1"})

    assert len(emu.sessions) == 1  # the orphan a client must be ready for
    assert http.get(TOOLKITS_URL).status_code == HTTPStatus.OK


def test_drop_closes_the_connection_without_answering(emu: Emulator, http: httpx.Client) -> None:
    emu.faults.drop(endpoint="toolkits.list")

    with pytest.raises(httpx.RemoteProtocolError):
        http.get(TOOLKITS_URL)

    assert emu.count("toolkits.list") == 1
    assert http.get(TOOLKITS_URL).status_code == HTTPStatus.OK


def test_hold_blocks_requests_until_the_event_is_set(emu: Emulator) -> None:
    release = threading.Event()
    emu.faults.hold("session.create", release)
    results: list[int] = []

    def post() -> None:
        response = httpx.post(
            emu.base_url + SESSION_URL, json={"user_id": "u1"}, headers={"x-api-key": KEY}
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


def test_reset_forgets_sessions_requests_and_faults(emu: Emulator, http: httpx.Client) -> None:
    create(http)
    emu.faults.enqueue(500)

    emu.reset()

    assert emu.sessions == {}
    assert emu.requests == []
    assert http.get(TOOLKITS_URL).status_code == HTTPStatus.OK
    assert len(emu.catalog) == 198


# Control API ----------------------------------------------------------------------------


def test_control_api_round_trip(emu: Emulator, http: httpx.Client) -> None:
    control = EmulatorControl(emu.base_url)

    assert control.health()["status"] == "ok"
    control.enqueue(429, endpoint="toolkits.list", retry_after=3)
    limited = http.get(TOOLKITS_URL)
    assert limited.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert limited.headers["retry-after"] == "3"

    control.latency(0.3, endpoint="toolkits.list")
    with pytest.raises(httpx.ReadTimeout):
        http.get(TOOLKITS_URL, timeout=0.05)
    control.clear_faults()
    assert http.get(TOOLKITS_URL).status_code == HTTPStatus.OK

    summary = control.requests("toolkits.list")
    assert summary["total"] == 3 == control.count("toolkits.list")
    assert KEY not in json.dumps(summary)
    assert all(r["authenticated"] for r in summary["requests"])

    session_id = create(http)["session_id"]
    control.set_connection(session_id, "github", "ACTIVE")
    assert emu.sessions[session_id]["connections"]["github"]["status"] == "ACTIVE"

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


def test_cursor_encodes_page_and_limit(http: httpx.Client) -> None:
    cursor = http.get(TOOLKITS_URL, params={"limit": 5}).json()["next_cursor"]

    decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))

    assert decoded == {"page": 2, "limit": 5}


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


# The real SDK ---------------------------------------------------------------------------


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
        api_key=KEY, base_url=emu.base_url, timeout=5, max_retries=0, allow_tracking=False
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


def test_sdk_rejects_a_wrong_key(composio_module: Any, emu: Emulator) -> None:
    import composio_client

    client = composio_module.Composio(
        api_key="wrong", base_url=emu.base_url, timeout=5, max_retries=0, allow_tracking=False
    )

    with pytest.raises(composio_client.AuthenticationError):
        client.create(user_id="u1", toolkits=["github"])
