"""The emulator's requests and answers against composio_client's own types: bodies and queries the
params TypedDicts refuse get the 400 validation envelope and change nothing; every answer of the
endpoints below is exactly its response model (tests/composio/contract.py). Also: tags and instant
normalised, the config history, toolkit categories and multi. No database.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import httpx
import pytest

from sessions_app.composio.emulator import ENDPOINTS, Emulator
from sessions_app.composio.emulator.contract import CONTRACTS
from tests.composio.contract import RESPONSE_MODELS, assert_answers
from tests.helpers import SESSION_URL, TOOLKITS_URL, assert_emulator_error, emulator_create


def test_every_routed_endpoint_has_a_request_contract_and_a_response_model() -> None:
    routed = set(ENDPOINTS) - {"mcp", "unknown"}

    assert routed <= set(CONTRACTS)
    assert routed <= set(RESPONSE_MODELS)


# Answers are the response models ------------------------------------------------------------


def test_every_session_answer_is_its_response_model(emu: Emulator, emu_http: httpx.Client) -> None:
    created = emu_http.post(
        SESSION_URL,
        json={
            "user_id": "u1",
            "toolkits": {"enable": ["github", "gmail"], "require_approval": ["gmail"]},
            "manage_connections": {"enable": True, "callback_url": "https://example.test/cb"},
            "auth_configs": {"GitHub": "ac_1"},
            "connected_accounts": {"github": ["ca_1"]},
            "tools": {"github": {"tags": ["readOnlyHint"]}, "gmail": {"disable": ["X"]}},
            "tags": {"enable": ["readOnlyHint"], "disable": ["destructiveHint"]},
            "instant": {"toolkits": {"enable": ["GitHub"]}, "return_instant_charge": True},
            "workbench": {"enable": True, "enable_proxy_execution": False},
            "multi_account": {"enable": True, "max_accounts_per_toolkit": 3},
            "proxy_execute": {"enable": True},
            "preload": {"tools": ["GITHUB_GET_ME"]},
        },
    )
    assert_answers("session.create", created, status=HTTPStatus.CREATED)
    url = f"{SESSION_URL}/{created.json()['session_id']}"
    emu.set_connection(created.json()["session_id"], "github", "ACTIVE")

    assert_answers("session.get", emu_http.get(url))
    assert_answers("session.toolkits", emu_http.get(f"{url}/toolkits"))
    assert_answers(
        "session.link",
        emu_http.post(f"{url}/link", json={"toolkit": "gmail"}),
        status=HTTPStatus.CREATED,
    )
    updated = emu_http.patch(
        url, json={"toolkits": None, "tags": None, "workbench": None, "expected_config_version": 1}
    )
    assert_answers("session.update", updated)
    assert_answers("session.config_history", emu_http.get(f"{url}/config_history"))
    assert_answers("session.delete", emu_http.delete(url))


def test_every_toolkit_answer_is_its_response_model(emu_http: httpx.Client) -> None:
    assert_answers("toolkits.list", emu_http.get(TOOLKITS_URL, params={"limit": 50}))
    assert_answers("toolkits.get", emu_http.get(f"{TOOLKITS_URL}/github"))
    assert_answers("toolkits.categories", emu_http.get(f"{TOOLKITS_URL}/categories"))
    assert_answers(
        "toolkits.multi", emu_http.post(f"{TOOLKITS_URL}/multi", json={"toolkits": ["github"]})
    )


# Requests are the params types --------------------------------------------------------------

BAD_CREATES = [
    ({}, ["Error in payload.user_id: Field required"]),
    ([{"user_id": "u1"}], ["Error in payload: Input should be a valid dictionary"]),
    (
        {"user_id": "u1", "surprise": 1},
        ["Error in payload.surprise: Extra inputs are not permitted"],
    ),
    (
        {"user_id": "u1", "manage_connections": {"enable": "yes"}},
        ["Error in payload.manage_connections.enable: Input should be a valid boolean"],
    ),
    (
        {"user_id": "u1", "manage_connections": {"enabled": True}},
        ["Error in payload.manage_connections.enabled: Extra inputs are not permitted"],
    ),
    ({"user_id": "u1", "tags": ["readOnly"]}, ["Error in payload.tags: Invalid input"]),
    ({"user_id": "u1", "instant": True}, ["Error in payload.instant: Invalid input"]),
    (
        {"user_id": "u1", "workbench": {"sandbox_size": "huge"}},
        [
            "Error in payload.workbench.sandbox_size: "
            "Input should be 'standard', 'medium', 'large' or 'xlarge'"
        ],
    ),
    (
        {"user_id": "u1", "auth_configs": {"github": 7}},
        ["Error in payload.auth_configs.github: Input should be a valid string"],
    ),
    (
        {"user_id": "u1", "connected_accounts": {"github": "ca_1"}},
        [
            "Error in payload.connected_accounts.github: "
            "'str' instances are not allowed as a Sequence value"
        ],
    ),
    (
        {"user_id": "u1", "search": {"enable": "true"}},
        ["Error in payload.search.enable: Input should be a valid boolean"],
    ),
    (
        {"user_id": 1, "toolkits": "github"},
        [
            "Error in payload.user_id: Input should be a valid string",
            "Error in payload.toolkits: Invalid input",
        ],
    ),
]


@pytest.mark.parametrize(("body", "errors"), BAD_CREATES)
def test_a_create_the_params_type_refuses_is_a_400_and_makes_nothing(
    emu: Emulator, emu_http: httpx.Client, body: Any, errors: list[str]
) -> None:
    response = emu_http.post(SESSION_URL, json=body)

    error = assert_emulator_error(response, HTTPStatus.BAD_REQUEST, "HTTP_BadRequest")
    assert error["code"] == 10400
    assert error["message"] == "Validation error while processing request"
    assert error["errors"] == errors
    assert emu.sessions == {}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"expected_config_version": 0},
            [
                "Error in payload.expected_config_version: "
                "Input should be greater than or equal to 1"
            ],
        ),
        (
            {"expected_config_version": "1"},
            ["Error in payload.expected_config_version: Input should be a valid integer"],
        ),
        ({"instant": None}, ["Error in payload.instant: Invalid input"]),
        ({"toolkits": {"enable": "gmail"}}, ["Error in payload.toolkits: Invalid input"]),
        ({"user_id": "u2"}, ["Error in payload.user_id: Extra inputs are not permitted"]),
        (
            {"toolkits": {"enable": ["gmail"]}, "manage_connections": {"enable": 1}},
            ["Error in payload.manage_connections.enable: Input should be a valid boolean"],
        ),
    ],
)
def test_a_patch_the_params_type_refuses_is_a_400_and_changes_nothing(
    emu: Emulator, emu_http: httpx.Client, body: dict[str, Any], errors: list[str]
) -> None:
    session_id = emulator_create(emu_http, toolkits={"enable": ["github"]})["session_id"]
    before = emu.sessions[session_id]
    url = f"{SESSION_URL}/{session_id}"

    response = emu_http.patch(url, json=body)

    error = assert_emulator_error(response, HTTPStatus.BAD_REQUEST, "HTTP_BadRequest")
    assert error["errors"] == errors
    assert emu.sessions[session_id] == before
    assert len(emu_http.get(f"{url}/config_history").json()["items"]) == 1


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, ["Error in payload.toolkit: Field required"]),
        ({"toolkit": 5}, ["Error in payload.toolkit: Input should be a valid string"]),
        (
            {"toolkit": "github", "callback_url": None},
            ["Error in payload.callback_url: Input should be a valid string"],
        ),
    ],
)
def test_a_link_the_params_type_refuses_is_a_400_and_connects_nothing(
    emu: Emulator, emu_http: httpx.Client, body: dict[str, Any], errors: list[str]
) -> None:
    session_id = emulator_create(emu_http)["session_id"]

    response = emu_http.post(f"{SESSION_URL}/{session_id}/link", json=body)

    assert assert_emulator_error(response, HTTPStatus.BAD_REQUEST)["errors"] == errors
    assert emu.accounts == {}


@pytest.mark.parametrize(
    ("path", "params", "errors"),
    [
        (
            TOOLKITS_URL,
            {"sort_by": "popularity"},
            ["Error in query.sort_by: Input should be 'usage' or 'alphabetically'"],
        ),
        (
            TOOLKITS_URL,
            {"limit": "many"},
            [
                "Error in query.limit: "
                "Input should be a valid number, unable to parse string as a number"
            ],
        ),
        (
            "{session}/toolkits",
            {"is_connected": "maybe"},
            [
                "Error in query.is_connected: "
                "Input should be a valid boolean, unable to interpret input"
            ],
        ),
        (
            "{session}/config_history",
            {"limit": "2.5"},
            [
                "Error in query.limit: "
                "Input should be a valid integer, unable to parse string as an integer"
            ],
        ),
    ],
)
def test_a_query_the_params_type_refuses_is_a_400(
    emu_http: httpx.Client, path: str, params: dict[str, str], errors: list[str]
) -> None:
    session = f"{SESSION_URL}/{emulator_create(emu_http)['session_id']}"

    response = emu_http.get(path.format(session=session), params=params)

    assert assert_emulator_error(response, HTTPStatus.BAD_REQUEST)["errors"] == errors


def test_unknown_query_parameters_are_ignored(emu_http: httpx.Client) -> None:
    response = emu_http.get(TOOLKITS_URL, params={"toolkit_versions": "latest", "limit": "5"})

    assert len(assert_answers("toolkits.list", response).items) == 5


def test_what_the_sdk_sends_beside_the_params_types_is_accepted(emu_http: httpx.Client) -> None:
    # composio sends `hooks` and `expected_config_version` as extra body fields, and `null` to
    # remove a policy block on PATCH, none of which composio_client's TypedDicts type.
    created = emulator_create(
        emu_http, toolkits={"enable": ["github"]}, hooks=[], manage_connections={"enable": True}
    )
    url = f"{SESSION_URL}/{created['session_id']}"

    response = emu_http.patch(
        url,
        json={
            "toolkits": None,
            "auth_configs": None,
            "manage_connections": {"callback_url": None},
            "hooks": None,
            "expected_config_version": 1,
        },
    )

    config = assert_answers("session.update", response).config
    assert config.toolkits is None
    assert config.auth_configs == {}
    assert config.manage_connections.callback_url is None


# tags and instant, normalised ---------------------------------------------------------------


def test_tags_are_answered_as_enabled_and_disabled_lists(emu_http: httpx.Client) -> None:
    as_list = emulator_create(emu_http, tags=["readOnlyHint", "idempotentHint"])
    as_object = emulator_create(
        emu_http, tags={"enable": ["readOnlyHint"], "disable": ["destructiveHint"]}
    )
    in_tools = emulator_create(emu_http, tools={"GitHub": {"tags": ["readOnlyHint"]}})

    assert as_list["config"]["tags"] == {"enabled": ["readOnlyHint", "idempotentHint"]}
    assert as_object["config"]["tags"] == {
        "enabled": ["readOnlyHint"],
        "disabled": ["destructiveHint"],
    }
    assert in_tools["config"]["tools"] == {"github": {"tags": {"enabled": ["readOnlyHint"]}}}
    assert emulator_create(emu_http)["config"]["tags"] is None


def test_instant_is_false_or_the_full_object_and_patch_keeps_what_it_omits(
    emu_http: httpx.Client,
) -> None:
    default = emulator_create(emu_http)
    off = emulator_create(emu_http, instant=False)
    on = emulator_create(
        emu_http,
        instant={"toolkits": {"enable": ["GitHub", "github"]}, "return_instant_charge": True},
    )
    url = f"{SESSION_URL}/{on['session_id']}"

    assert default["config"]["instant"] == {
        "return_instant_charge": False,
        "return_prices_in_search": False,
    }
    assert off["config"]["instant"] is False
    assert on["config"]["instant"] == {
        "toolkits": {"enabled": ["github"]},
        "return_instant_charge": True,
        "return_prices_in_search": False,
    }
    kept = emu_http.patch(url, json={"instant": {"return_prices_in_search": True}}).json()
    assert kept["config"]["instant"] == {
        "toolkits": {"enabled": ["github"]},
        "return_instant_charge": True,
        "return_prices_in_search": True,
    }
    assert emu_http.patch(url, json={"instant": False}).json()["config"]["instant"] is False
    again = emu_http.patch(url, json={"instant": {}}).json()
    assert again["config"]["instant"] == default["config"]["instant"]


# Config history ----------------------------------------------------------------------------


def test_config_history_has_every_version_newest_first(
    emu: Emulator, emu_http: httpx.Client
) -> None:
    created = emulator_create(emu_http, toolkits={"enable": ["github"]})
    url = f"{SESSION_URL}/{created['session_id']}"
    second = emu_http.patch(url, json={"toolkits": {"enable": ["gmail"]}}).json()
    emu_http.patch(url, json={"toolkits": {"enable": ["slack"]}, "expected_config_version": 1})
    third = emu_http.patch(url, json={"tags": ["readOnlyHint"]}).json()

    history = assert_answers("session.config_history", emu_http.get(f"{url}/config_history"))

    assert [item.version for item in history.items] == [3, 2, 1]
    assert [item.is_current for item in history.items] == [True, False, False]
    body = emu_http.get(f"{url}/config_history").json()
    assert [item["config"] for item in body["items"]] == [
        third["config"],
        second["config"],
        created["config"],
    ]
    assert history.items[0].created_at >= history.items[2].created_at
    assert (history.total_items, history.total_pages, history.next_cursor) == (3, 1, None)
    # The 409 above changed nothing, so it is not in the history.
    entries = [e for e in emu._config_history.values() if e["session_id"] == created["session_id"]]
    assert sorted(e["version"] for e in entries) == [1, 2, 3]
    assert {e["version"]: e["change"] for e in entries}[3] == {"tags": ["readOnlyHint"]}


def test_config_history_pages_and_goes_with_the_session(
    emu: Emulator, emu_http: httpx.Client
) -> None:
    session_id = emulator_create(emu_http)["session_id"]
    url = f"{SESSION_URL}/{session_id}"
    for slug in ("github", "gmail", "slack"):
        emu_http.patch(url, json={"toolkits": {"enable": [slug]}})

    first = emu_http.get(f"{url}/config_history", params={"limit": 3}).json()
    rest = emu_http.get(f"{url}/config_history", params={"cursor": first["next_cursor"]}).json()

    assert [i["version"] for i in first["items"] + rest["items"]] == [4, 3, 2, 1]
    assert rest["next_cursor"] is None
    emu_http.delete(url)
    assert_emulator_error(
        emu_http.get(f"{url}/config_history"),
        HTTPStatus.NOT_FOUND,
        "ToolRouterV2_SessionNotFound",
    )
    assert emu._config_history == {}


# Toolkit categories and multi --------------------------------------------------------------


def test_categories_are_every_catalog_category_once_by_name(
    emu: Emulator, emu_http: httpx.Client
) -> None:
    response = emu_http.get(f"{TOOLKITS_URL}/categories")

    body = assert_answers("toolkits.categories", response)
    expected = {c["id"]: c["name"] for tk in emu.catalog for c in tk["categories"]}
    assert {item.id: item.name for item in body.items} == expected
    assert [item.name for item in body.items] == sorted(expected.values())
    assert (body.total_items, body.total_pages, body.next_cursor) == (len(expected), 1, None)
    # A fixed path, not a toolkit called "categories".
    assert emu.count("toolkits.categories") == 1
    assert emu.count("toolkits.get") == 0


def test_multi_answers_the_named_toolkits_like_the_list(
    emu: Emulator, emu_http: httpx.Client
) -> None:
    wanted = ["Slack", "github", "no_such_kit", "gmail"]

    response = emu_http.post(f"{TOOLKITS_URL}/multi", json={"toolkits": wanted, "limit": 2})

    body = assert_answers("toolkits.multi", response)
    in_catalog_order = [
        tk["slug"] for tk in emu.catalog if tk["slug"] in {"slack", "github", "gmail"}
    ]
    assert [item.slug for item in body.items] == in_catalog_order[:2]
    assert (body.total_items, body.total_pages) == (3, 2)
    listed = emu_http.get(TOOLKITS_URL, params={"search": "github", "limit": 1}).json()["items"][0]
    multi = emu_http.post(f"{TOOLKITS_URL}/multi", json={"toolkits": ["github"]}).json()
    assert multi["items"] == [listed]
    sorted_page = emu_http.post(
        f"{TOOLKITS_URL}/multi", json={"sort_by": "alphabetically", "limit": 3}
    ).json()
    names = [tk["name"] for tk in emu.catalog]
    assert [i["name"] for i in sorted_page["items"]] == sorted(names, key=str.lower)[:3]
    assert emu.count("toolkits.multi") == 3
