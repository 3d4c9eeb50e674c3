"""The Composio emulator's toolkits over raw HTTP: the catalog and its pages, a session's toolkits
with their connection state, and the link that starts a connection. No database.
"""

from __future__ import annotations

import base64
import json
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from sessions_app.composio.emulator import Emulator
from sessions_app.composio.emulator.catalog import load_catalog
from tests.helpers import SESSION_URL, TOOLKITS_URL, assert_emulator_error, emulator_create

# Toolkit catalog ------------------------------------------------------------------------


def test_toolkit_list_pages_through_the_whole_catalog(
    emu: Emulator, emu_http: httpx.Client
) -> None:
    slugs: list[str] = []
    pages = []
    params: dict[str, Any] = {"limit": 50}
    while True:
        body = emu_http.get(TOOLKITS_URL, params=params).json()
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


def test_toolkit_list_items_have_the_api_shape(emu_http: httpx.Client) -> None:
    body = emu_http.get(TOOLKITS_URL, params={"search": "github", "limit": 1}).json()

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


def test_toolkit_list_defaults_to_20_and_allows_1000(emu_http: httpx.Client) -> None:
    assert len(emu_http.get(TOOLKITS_URL).json()["items"]) == 20

    body = emu_http.get(TOOLKITS_URL, params={"limit": 1000}).json()

    assert len(body["items"]) == 198
    assert body["next_cursor"] is None
    assert body["total_pages"] == 1


@pytest.mark.parametrize("limit", ["1001", "0", "-1", "abc", "2.5"])
def test_toolkit_list_rejects_a_bad_limit(emu_http: httpx.Client, limit: str) -> None:
    assert_emulator_error(
        emu_http.get(TOOLKITS_URL, params={"limit": limit}), HTTPStatus.BAD_REQUEST
    )


def test_toolkit_list_rejects_a_garbage_cursor(emu_http: httpx.Client) -> None:
    assert_emulator_error(
        emu_http.get(TOOLKITS_URL, params={"cursor": "%%%"}), HTTPStatus.BAD_REQUEST
    )


def test_toolkit_list_ignores_unknown_query_params(emu_http: httpx.Client) -> None:
    response = emu_http.get(TOOLKITS_URL, params={"toolkit_versions": "latest", "whatever": "1"})

    assert response.status_code == HTTPStatus.OK


def test_toolkit_list_filters_by_category(emu_http: httpx.Client) -> None:
    body = emu_http.get(TOOLKITS_URL, params={"category": "crm", "limit": 1000}).json()

    assert body["total_items"] > 0
    assert all("crm" in [c["id"] for c in item["meta"]["categories"]] for item in body["items"])


def test_toolkit_get_answers_detail_or_404(emu_http: httpx.Client) -> None:
    response = emu_http.get(f"{TOOLKITS_URL}/github")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["slug"] == "github"
    assert response.json()["meta"]["categories"]

    assert_emulator_error(emu_http.get(f"{TOOLKITS_URL}/no_such_kit"), HTTPStatus.NOT_FOUND)


def test_set_catalog_makes_toolkits_vanish(emu: Emulator, emu_http: httpx.Client) -> None:
    emu.set_catalog([{"slug": "github", "name": "GitHub"}, {"slug": "gmail"}])
    try:
        body = emu_http.get(TOOLKITS_URL).json()
        assert [i["slug"] for i in body["items"]] == ["github", "gmail"]
        assert_emulator_error(emu_http.get(f"{TOOLKITS_URL}/slack"), HTTPStatus.NOT_FOUND)
        response = emu_http.post(
            SESSION_URL, json={"user_id": "u", "toolkits": {"enable": ["slack"]}}
        )
        assert_emulator_error(response, HTTPStatus.BAD_REQUEST)
    finally:
        emu.set_catalog(load_catalog())


def test_cursor_encodes_page_and_limit(emu_http: httpx.Client) -> None:
    cursor = emu_http.get(TOOLKITS_URL, params={"limit": 5}).json()["next_cursor"]

    decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))

    assert decoded == {"page": 2, "limit": 5}


# Session toolkits and connections -------------------------------------------------------


def test_session_toolkits_paginate_and_show_connection_state(
    emu: Emulator, emu_http: httpx.Client
) -> None:
    session_id = emulator_create(emu_http, toolkits={"enable": ["github", "gmail", "slack"]})[
        "session_id"
    ]
    url = f"{SESSION_URL}/{session_id}/toolkits"
    emu.set_connection(session_id, "gmail", "ACTIVE")
    emu.set_connection(session_id, "slack", "EXPIRED")

    first = emu_http.get(url, params={"limit": 2}).json()
    second = emu_http.get(url, params={"limit": 2, "cursor": first["next_cursor"]}).json()

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


def test_session_toolkits_filters(emu: Emulator, emu_http: httpx.Client) -> None:
    session_id = emulator_create(emu_http, toolkits={"enable": ["github", "gmail", "slack"]})[
        "session_id"
    ]
    url = f"{SESSION_URL}/{session_id}/toolkits"
    emu.set_connection(session_id, "gmail", "ACTIVE")
    emu.set_connection(session_id, "slack", "INITIATED")

    connected = emu_http.get(url, params={"is_connected": "true"}).json()
    only = emu_http.get(url, params={"toolkits": "slack,github"}).json()
    found = emu_http.get(url, params={"search": "gmai"}).json()

    assert [i["slug"] for i in connected["items"]] == ["gmail"]
    assert [i["slug"] for i in only["items"]] == ["slack", "github"]
    assert [i["slug"] for i in found["items"]] == ["gmail"]


def test_session_toolkits_limit_is_capped_at_50(emu_http: httpx.Client) -> None:
    session_id = emulator_create(emu_http)["session_id"]

    response = emu_http.get(f"{SESSION_URL}/{session_id}/toolkits", params={"limit": 51})

    assert_emulator_error(response, HTTPStatus.BAD_REQUEST)


def test_set_connection_none_removes_the_account(emu: Emulator, emu_http: httpx.Client) -> None:
    session_id = emulator_create(emu_http, toolkits={"enable": ["github"]})["session_id"]
    emu.set_connection(session_id, "github", "ACTIVE")
    emu.set_connection(session_id, "github", None)

    body = emu_http.get(f"{SESSION_URL}/{session_id}/toolkits").json()

    assert body["items"][0]["connected_account"] is None


def test_link_initiates_a_connection_and_its_page_completes_it(
    emu: Emulator, emu_http: httpx.Client
) -> None:
    session_id = emulator_create(emu_http, toolkits={"enable": ["github"]})["session_id"]

    response = emu_http.post(
        f"{SESSION_URL}/{session_id}/link",
        json={"toolkit": "github", "callback_url": "https://console.test/done"},
    )

    assert response.status_code == HTTPStatus.CREATED
    link = response.json()
    assert set(link) == {"link_token", "redirect_url", "connected_account_id"}
    assert link["redirect_url"].startswith(emu.base_url)
    account = emu.session_account(session_id, "github")
    assert account == {**account, "status": "INITIATED", "id": link["connected_account_id"]}

    page = httpx.get(link["redirect_url"])

    assert page.status_code == HTTPStatus.OK
    assert 'name="decision" value="allow"' in page.text
    assert emu.session_account(session_id, "github")["status"] == "INITIATED"

    allowed = httpx.get(link["redirect_url"], params={"decision": "allow"})

    assert allowed.status_code == HTTPStatus.FOUND
    assert allowed.headers["location"].startswith("https://console.test/done?status=success")
    assert emu.session_account(session_id, "github")["status"] == "ACTIVE"


def test_link_rejects_a_toolkit_outside_the_session(emu_http: httpx.Client) -> None:
    session_id = emulator_create(emu_http, toolkits={"enable": ["github"]})["session_id"]

    response = emu_http.post(f"{SESSION_URL}/{session_id}/link", json={"toolkit": "gmail"})

    assert_emulator_error(response, HTTPStatus.BAD_REQUEST)
