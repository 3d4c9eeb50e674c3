"""The Composio emulator's sessions over raw HTTP: create, get, patch and delete, their wire
shapes, status codes and validation, and the API key. No database.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from sessions_app.composio.emulator import Emulator
from tests.factories import EMULATOR_KEY, PROJECT_ROOT
from tests.helpers import SESSION_URL, assert_emulator_error, emulator_create


def documented_session() -> dict[str, Any]:
    """The session docs/emulator.md shows under "Session (create, get, update)", every config
    field at its default but `user_id` and `toolkits`."""
    doc = (PROJECT_ROOT / "docs" / "emulator.md").read_text()
    section = doc.split("### Session (create, get, update)", 1)[1]
    return json.loads(section.split("```json", 1)[1].split("```", 1)[0])


def test_create_answers_201_with_the_documented_shape(
    emu: Emulator, emu_http: httpx.Client
) -> None:
    response = emu_http.post(
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
    documented = documented_session()
    assert body["tool_router_tools"] == documented["tool_router_tools"]
    assert body["config_version"] == documented["config_version"]
    assert body["config"] == {
        **documented["config"],
        "user_id": "u_1",
        "toolkits": {"enabled": ["github", "gmail"]},
    }
    assert emu.sessions[session_id]["config"]["toolkits"] == {"enabled": ["github", "gmail"]}


def test_requests_say_enable_and_responses_say_enabled(emu_http: httpx.Client) -> None:
    body = emulator_create(
        emu_http, toolkits={"disable": ["slack"]}, manage_connections={"enable": False}
    )

    assert body["config"]["toolkits"] == {"disabled": ["slack"]}
    assert body["config"]["manage_connections"]["enabled"] is False
    assert "COMPOSIO_MANAGE_CONNECTIONS" not in body["tool_router_tools"]


def test_it_normalizes_and_deduplicates_enabled_slugs(emu_http: httpx.Client) -> None:
    body = emulator_create(emu_http, toolkits={"enable": ["GitHub", "github", "gmail"]})

    assert body["config"]["toolkits"] == {"enabled": ["github", "gmail"]}


def test_an_empty_enable_list_means_deny_all(emu_http: httpx.Client) -> None:
    body = emulator_create(emu_http, toolkits={"enable": []})
    toolkits = emu_http.get(f"{SESSION_URL}/{body['session_id']}/toolkits").json()

    assert body["config"]["toolkits"] == {"enabled": []}
    assert toolkits["items"] == []
    assert toolkits["total_items"] == 0


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong-key"}], ids=["missing", "wrong"])
def test_it_answers_401_without_a_valid_api_key(emu: Emulator, headers: dict[str, str]) -> None:
    response = httpx.post(emu.base_url + SESSION_URL, json={"user_id": "u1"}, headers=headers)

    assert_emulator_error(response, HTTPStatus.UNAUTHORIZED, "HTTP_Unauthorized")
    assert emu.sessions == {}
    (recorded,) = emu.requests
    assert recorded.authenticated is False
    assert recorded.endpoint == "session.create"


def test_it_never_keeps_the_api_key_value(emu: Emulator, emu_http: httpx.Client) -> None:
    emulator_create(emu_http)

    (recorded,) = emu.requests
    assert recorded.authenticated is True
    assert recorded.headers["x-api-key"] == "<redacted>"
    assert EMULATOR_KEY not in repr(emu.requests)


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
def test_it_rejects_a_malformed_toolkits_payload(emu_http: httpx.Client, toolkits: Any) -> None:
    response = emu_http.post(SESSION_URL, json={"user_id": "u1", "toolkits": toolkits})

    error = assert_emulator_error(response, HTTPStatus.BAD_REQUEST, "HTTP_BadRequest")
    assert error["code"] == 10400
    assert error["errors"] == ["Error in payload.toolkits: Invalid input"]


def test_it_rejects_an_unknown_toolkit_slug_by_name(emu: Emulator, emu_http: httpx.Client) -> None:
    response = emu_http.post(
        SESSION_URL, json={"user_id": "u1", "toolkits": {"enable": ["github", "no_such_kit"]}}
    )

    error = assert_emulator_error(response, HTTPStatus.BAD_REQUEST, "HTTP_BadRequest")
    assert "no_such_kit" in error["message"]
    assert "github" not in error["message"]
    assert emu.sessions == {}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "Field required"),
        ({"user_id": ""}, "String should have at least 1 character"),
        ({"user_id": 7}, "Input should be a valid string"),
        ({"user_id": None}, "Input should be a valid string"),
    ],
)
def test_it_requires_a_non_empty_user_id(
    emu: Emulator, emu_http: httpx.Client, body: dict[str, Any], detail: str
) -> None:
    response = emu_http.post(SESSION_URL, json=body)

    error = assert_emulator_error(response, HTTPStatus.BAD_REQUEST, "HTTP_BadRequest")
    assert error["errors"] == [f"Error in payload.user_id: {detail}"]
    assert emu.sessions == {}


def test_get_returns_the_same_shape_as_create(emu_http: httpx.Client) -> None:
    created = emulator_create(emu_http, toolkits={"enable": ["github"]})

    response = emu_http.get(f"{SESSION_URL}/{created['session_id']}")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == created


def test_patch_changes_config_and_bumps_the_version(emu_http: httpx.Client) -> None:
    created = emulator_create(emu_http, toolkits={"enable": ["github"]})
    url = f"{SESSION_URL}/{created['session_id']}"

    response = emu_http.patch(
        url, json={"toolkits": {"enable": ["gmail"]}, "expected_config_version": 1}
    )

    assert response.status_code == HTTPStatus.OK
    assert response.json()["config_version"] == 2
    assert response.json()["config"]["toolkits"] == {"enabled": ["gmail"]}
    assert emu_http.get(url).json()["config_version"] == 2


def test_patch_with_a_stale_config_version_answers_409(
    emu: Emulator, emu_http: httpx.Client
) -> None:
    created = emulator_create(emu_http, toolkits={"enable": ["github"]})
    url = f"{SESSION_URL}/{created['session_id']}"
    emu_http.patch(url, json={"toolkits": {"enable": ["gmail"]}})

    response = emu_http.patch(
        url, json={"toolkits": {"enable": ["slack"]}, "expected_config_version": 1}
    )

    assert_emulator_error(response, HTTPStatus.CONFLICT, "ToolRouterV2_SessionConfigConflict")
    assert emu.sessions[created["session_id"]]["config"]["toolkits"] == {"enabled": ["gmail"]}
    assert emu.sessions[created["session_id"]]["config_version"] == 2


def test_patch_validates_toolkits_like_create(emu_http: httpx.Client) -> None:
    created = emulator_create(emu_http)

    response = emu_http.patch(
        f"{SESSION_URL}/{created['session_id']}", json={"toolkits": ["github"]}
    )

    assert_emulator_error(response, HTTPStatus.BAD_REQUEST, "HTTP_BadRequest")


def test_delete_answers_deleted_then_404(emu: Emulator, emu_http: httpx.Client) -> None:
    session_id = emulator_create(emu_http)["session_id"]
    url = f"{SESSION_URL}/{session_id}"

    response = emu_http.delete(url)

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"session_id": session_id, "deleted": True}
    assert session_id not in emu.sessions
    assert_emulator_error(
        emu_http.delete(url), HTTPStatus.NOT_FOUND, "ToolRouterV2_SessionNotFound"
    )
    assert_emulator_error(emu_http.get(url), HTTPStatus.NOT_FOUND, "ToolRouterV2_SessionNotFound")
    assert_emulator_error(
        emu_http.patch(url, json={}), HTTPStatus.NOT_FOUND, "ToolRouterV2_SessionNotFound"
    )


def test_unknown_paths_answer_404_with_the_envelope(emu: Emulator, emu_http: httpx.Client) -> None:
    assert_emulator_error(
        emu_http.get("/api/v3.1/nothing/here"), HTTPStatus.NOT_FOUND, "HTTP_NotFound"
    )
    assert emu.count("unknown") == 1
