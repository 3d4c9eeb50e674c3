"""The emulator's connected accounts, auth configs, tool execution and execution logs, driven
through the real SDK and composio_client. Every answer is validated strictly against
composio_client's own response model (`strict`). No database."""

from __future__ import annotations

import json
import time
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from composio_client import _models as models
from pydantic import BaseModel

from sessions_app.composio.emulator import Emulator, EmulatorControl
from sessions_app.composio.emulator import account_shapes as shapes
from sessions_app.composio.emulator.accounts import DENIED_REASON, default_auth_config_id
from tests.factories import EMULATOR_KEY


def strict(model: type[BaseModel], answer: Any) -> Any:
    """`answer` (a composio_client raw response or an httpx response) validated in strict mode
    against `model`: every required field there with the right type, enums in range."""
    raw = getattr(answer, "http_response", answer)
    assert raw.status_code < 300, raw.text
    return model.model_validate_json(raw.content, strict=True)


@pytest.fixture(scope="module")
def composio_module() -> Any:
    import composio.core.models.base as base

    base.push_event = lambda *a, **k: None  # no telemetry thread posting to the internet
    import composio

    return composio


@pytest.fixture
def sdk(composio_module: Any, emu: Emulator) -> Any:
    return composio_module.Composio(
        api_key=EMULATOR_KEY, base_url=emu.base_url, timeout=5, max_retries=0, allow_tracking=False
    )


@pytest.fixture
def client(sdk: Any) -> Any:
    """composio_client, as the SDK built it."""
    return sdk.client


def _allow(redirect_url: str, decision: str = "allow") -> httpx.Response:
    return httpx.get(redirect_url, params={"decision": decision}, timeout=5)


# Shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", shapes.AUTH_SCHEMES)
def test_every_status_of_every_scheme_fits_the_client_models(scheme: str) -> None:
    auth_config = {
        "id": "ac_x",
        "auth_scheme": scheme,
        "is_composio_managed": False,
        "status": "ENABLED",
    }
    for status in shapes.ACCOUNT_STATUSES:
        account = {
            "id": "ca_x",
            "user_id": "u1",
            "toolkit": "github",
            "status": status,
            "status_reason": None,
            "is_disabled": status == "INACTIVE",
            "created_at": "2025-07-29T00:00:00.000Z",
            "updated_at": "2025-07-29T00:00:00.000Z",
        }
        body = shapes.account_body(account, auth_config, redirect_url="http://127.0.0.1/x")
        parsed = models.ConnectedAccountRetrieveResponse.model_validate_json(
            json.dumps(body), strict=True
        )
        assert parsed.status.value == status
        page = {"items": [body], "total_pages": 1, "current_page": 1, "total_items": 1}
        models.ConnectedAccountListResponse.model_validate_json(json.dumps(page), strict=True)


# Accounts belong to the user ---------------------------------------------------------------


def test_a_users_sessions_share_the_account_one_of_them_connected(
    emu: Emulator, sdk: Any, client: Any
) -> None:
    first = sdk.create(user_id="u1", toolkits=["github", "gmail"])
    second = sdk.create(user_id="u1", toolkits=["github"])
    stranger = sdk.create(user_id="u2", toolkits=["github"])

    link = strict(
        models.SessionLinkResponse,
        client.tool_router.session.with_raw_response.link(first.session_id, toolkit="github"),
    )
    page = httpx.get(link.redirect_url, timeout=5)
    assert page.status_code == HTTPStatus.OK and "Allow" in page.text and "<script" not in page.text
    assert emu.accounts[link.connected_account_id]["status"] == "INITIATED"
    assert _allow(link.redirect_url).status_code == HTTPStatus.OK

    assert second.toolkits().items[0].connection.is_active is True
    assert stranger.toolkits().items[0].connection.connected_account is None
    toolkits = strict(
        models.SessionToolkitsResponse,
        client.tool_router.session.with_raw_response.toolkits(second.session_id),
    )
    assert toolkits.root.items[0].connected_account.id == link.connected_account_id
    account = emu.accounts[link.connected_account_id]
    assert (account["user_id"], account["auth_config_id"]) == (
        "u1",
        default_auth_config_id("github"),
    )


def test_deny_on_the_connect_page_fails_the_account_with_a_reason(
    emu: Emulator, sdk: Any, client: Any
) -> None:
    session = sdk.create(user_id="u1", toolkits=["github"])
    request = session.authorize("github", callback_url="https://console.test/back")

    denied = _allow(request.redirect_url, "deny")

    assert denied.status_code == HTTPStatus.FOUND
    assert denied.headers["location"].startswith("https://console.test/back?status=failed")
    got = strict(
        models.ConnectedAccountRetrieveResponse,
        client.connected_accounts.with_raw_response.retrieve(request.id),
    )
    assert (got.status.value, got.status_reason) == ("FAILED", DENIED_REASON)
    assert session.toolkits().items[0].connection.is_active is False


def test_a_session_uses_the_latest_active_account_else_the_latest(emu: Emulator, sdk: Any) -> None:
    session = sdk.create(user_id="u1", toolkits=["github"])
    old_active = emu.create_account("u1", "github", "ACTIVE")
    emu.create_account("u1", "github", "EXPIRED")
    assert emu.session_account(session.session_id, "github")["id"] == old_active

    emu.set_account_status(old_active, "REVOKED", "Revoked by the user at GitHub")
    latest = emu.create_account("u1", "github", "FAILED")

    assert emu.session_account(session.session_id, "github")["id"] == latest
    other_config = emu.create_account("u1", "github", "ACTIVE", auth_config_id="ac_custom1")
    assert emu.session_account(session.session_id, "github")["id"] == latest
    pinned = sdk.create(user_id="u1", toolkits=["github"], auth_configs={"github": "ac_custom1"})
    assert emu.session_account(pinned.session_id, "github")["id"] == other_config


# /connected_accounts and /auth_configs ------------------------------------------------------


def test_connected_accounts_list_filters_and_pages(emu: Emulator, client: Any) -> None:
    a = emu.create_account("u1", "github", "ACTIVE")
    b = emu.create_account("u1", "gmail", "EXPIRED", status_reason="token expired")
    c = emu.create_account("u2", "github", "INACTIVE")
    d = emu.create_account("u2", "slack", "INITIALIZING")
    accounts = client.connected_accounts.with_raw_response

    def ids(**params: Any) -> list[str]:
        page = strict(models.ConnectedAccountListResponse, accounts.list(**params))
        return [item.id for item in page.items]

    assert ids() == [d, c, b, a]  # newest first
    assert ids(user_ids=["u1"]) == [b, a]
    assert ids(toolkit_slugs=["github"], order_direction="asc") == [a, c]
    assert ids(statuses=["EXPIRED", "INACTIVE"]) == [c, b]
    assert ids(connected_account_ids=[a, d]) == [d, a]
    assert ids(auth_config_ids=[default_auth_config_id("gmail")]) == [b]
    first = strict(models.ConnectedAccountListResponse, accounts.list(limit=3))
    rest = strict(models.ConnectedAccountListResponse, accounts.list(cursor=first.next_cursor))
    assert [i.id for i in first.items + rest.items] == [d, c, b, a]
    assert (first.total_items, rest.next_cursor) == (4, None)
    disabled = strict(models.ConnectedAccountListResponse, accounts.list(connected_account_ids=[c]))
    assert disabled.items[0].is_disabled is True
    assert disabled.items[0].auth_config.is_disabled is False


def test_an_account_is_read_disabled_enabled_refreshed_and_deleted(
    emu: Emulator, sdk: Any, client: Any
) -> None:
    account_id = emu.create_account("u1", "github", "ACTIVE")
    accounts = client.connected_accounts.with_raw_response

    got = strict(models.ConnectedAccountRetrieveResponse, accounts.retrieve(account_id))
    assert (got.status.value, got.toolkit.slug) == ("ACTIVE", "github")
    assert got.model_extra == {} and got.state.val.status.value == "ACTIVE"

    off = strict(
        models.ConnectedAccountUpdateStatusResponse,
        accounts.update_status(account_id, enabled=False),
    )
    assert off.success is True
    got = strict(models.ConnectedAccountRetrieveResponse, accounts.retrieve(account_id))
    assert (got.status.value, got.is_disabled) == ("INACTIVE", True)
    sdk.connected_accounts.enable(account_id)
    assert emu.accounts[account_id]["status"] == "ACTIVE"

    refreshed = strict(models.ConnectedAccountRefreshResponse, accounts.refresh(account_id))
    assert refreshed.status.value == "INITIATED"
    assert _allow(refreshed.redirect_url).status_code == HTTPStatus.OK
    assert emu.accounts[account_id]["status"] == "ACTIVE"

    deleted = strict(models.ConnectedAccountDeleteResponse, accounts.delete(account_id))
    assert deleted.success is True and account_id not in emu.accounts
    with pytest.raises(Exception) as missing:
        client.connected_accounts.retrieve(account_id)
    assert missing.value.status_code == HTTPStatus.NOT_FOUND


def test_auth_configs_list_shows_default_and_custom_configs(emu: Emulator, client: Any) -> None:
    emu.create_account("u1", "github", "ACTIVE")
    emu.create_account("u2", "github", "ACTIVE")
    emu.create_account("u1", "ahrefs", "ACTIVE")  # API_KEY only: not Composio-managed
    emu.create_account("u1", "gmail", "ACTIVE", auth_config_id="ac_mygmail")
    configs = client.auth_configs.with_raw_response

    every = strict(models.AuthConfigListResponse, configs.list())
    by_id = {c.id: c for c in every.items}
    github = by_id[default_auth_config_id("github")]
    assert (github.is_composio_managed, github.auth_scheme.value) == (True, "OAUTH2")
    assert (github.no_of_connections, github.type.value) == (2, "default")
    assert by_id[default_auth_config_id("ahrefs")].is_composio_managed is False
    assert by_id["ac_mygmail"].type.value == "custom"
    managed = strict(models.AuthConfigListResponse, configs.list(is_composio_managed=True))
    assert {c.id for c in managed.items} == {default_auth_config_id("github")}
    gmail = strict(models.AuthConfigListResponse, configs.list(toolkit_slug="gmail,slack"))
    assert [c.id for c in gmail.items] == ["ac_mygmail"]
    paged = strict(models.AuthConfigListResponse, configs.list(limit=2))
    assert (len(paged.items), paged.total_items) == (2, 3)


# Control API -------------------------------------------------------------------------------


def test_control_api_moves_and_expires_accounts(emu: Emulator, sdk: Any) -> None:
    control = EmulatorControl(emu.base_url)
    session = sdk.create(user_id="u1", toolkits=["github", "gmail"])
    github = control.set_connection(session.session_id, "github", "ACTIVE")["account_id"]
    gmail = control.create_account("u1", "gmail")["id"]
    elsewhere = control.create_account("u2", "gmail")["id"]

    moved = control.set_account_status(gmail, "REVOKED", "Revoked at Google")
    assert (moved["status"], moved["status_reason"]) == ("REVOKED", "Revoked at Google")
    assert control.expire_accounts(user_id="u1") == [github]
    assert control.expire_accounts(account_ids=[elsewhere]) == [elsewhere]
    assert {a["id"]: a["status"] for a in control.accounts("u1")} == {
        github: "EXPIRED",
        gmail: "REVOKED",
    }
    states = {i.slug: i.connection.connected_account.status for i in session.toolkits().items}
    assert states == {"github": "EXPIRED", "gmail": "REVOKED"}
    assert control.health()["accounts"] == 3


# Tools, execution and the execution log ----------------------------------------------------


def test_session_tools_are_its_meta_tools(emu: Emulator, client: Any) -> None:
    session = client.tool_router.session.create(user_id="u1", toolkits={"enable": ["github"]})

    tools = strict(
        models.SessionToolsResponse,
        client.tool_router.session.with_raw_response.tools(session.session_id),
    )

    assert [t.slug for t in tools.root.items] == session.tool_router_tools


def test_search_finds_tools_and_says_what_is_connected(
    emu: Emulator, sdk: Any, client: Any
) -> None:
    session = sdk.create(user_id="u1", toolkits=["github", "gmail"])
    emu.set_connection(session.session_id, "gmail", "ACTIVE")

    found = strict(
        models.SessionSearchResponse,
        client.tool_router.session.with_raw_response.search(
            session.session_id,
            queries=[{"use_case": "send an email"}, {"use_case": "create a github issue"}],
        ),
    )

    assert found.results[0].primary_tool_slugs == ["GMAIL_SEND_EMAIL"]
    assert found.results[1].primary_tool_slugs == ["GITHUB_CREATE_AN_ISSUE"]
    statuses = {s.toolkit: s.has_active_connection for s in found.toolkit_connection_statuses}
    assert statuses == {"gmail": True, "github": False}
    assert "GMAIL_SEND_EMAIL" in found.tool_schemas
    assert session.search(query="send an email").results[0].primary_tool_slugs == [
        "GMAIL_SEND_EMAIL"
    ]


def test_execute_refuses_without_an_active_account_then_runs_and_logs(
    emu: Emulator, sdk: Any, client: Any
) -> None:
    from composio_client import BadRequestError

    session = sdk.create(user_id="u1", toolkits=["github"])
    args = {"owner": "acme", "repo": "api", "title": "Broken build"}
    emu.set_connection(session.session_id, "github", "EXPIRED")

    with pytest.raises(BadRequestError) as refused:
        session.execute("GITHUB_CREATE_AN_ISSUE", arguments=args)
    error = refused.value.body["error"]
    assert error["slug"] == "ToolRouterV2_NoActiveConnection"
    assert "github" in error["message"] and "EXPIRED" in error["message"]
    assert emu.execution_logs == {}

    emu.set_connection(session.session_id, "github", "ACTIVE")
    raw = client.tool_router.session.with_raw_response.execute(
        session.session_id, tool_slug="GITHUB_CREATE_AN_ISSUE", arguments=args
    )
    done = strict(models.SessionExecuteResponse, raw).root
    assert (done.result_type.value, done.data["title"]) == ("completed", "Broken build")
    again = session.execute("GITHUB_CREATE_AN_ISSUE", arguments=args)
    assert again.data == done.data  # canned: the same call answers the same
    failed = session.execute("GITHUB_CREATE_AN_ISSUE", arguments={"owner": "acme"})
    assert failed.result_type == "failed" and "title" in failed.error

    entry = strict(
        models.LogRetrieveToolExecutionResponse,
        client.logs.with_raw_response.retrieve_tool_execution(done.log_id),
    )
    assert (entry.status.value, entry.context.session_id) == ("success", session.session_id)
    assert entry.metadata.credential_source.value == "connected_account"
    assert entry.data["tool_slug"] == "GITHUB_CREATE_AN_ISSUE"


def test_execute_meta_runs_several_tools_under_one_parent(
    emu: Emulator, sdk: Any, client: Any
) -> None:
    session = sdk.create(user_id="u1", toolkits=["github", "hackernews"])
    emu.set_connection(session.session_id, "github", "ACTIVE")
    calls = [
        {"tool_slug": "GITHUB_GET_THE_AUTHENTICATED_USER", "arguments": {}},
        {"tool_slug": "HACKERNEWS_EMULATED_PING", "arguments": {"message": "hi"}},
    ]

    raw = client.tool_router.session.with_raw_response.execute_meta(
        session.session_id, slug="COMPOSIO_MULTI_EXECUTE_TOOL", arguments={"tools": calls}
    )

    meta = strict(models.SessionExecuteMetaResponse, raw).root
    assert meta.result_type.value == "completed" and meta.error is None
    results = meta.data["results"]
    assert [r["response"]["successful"] for r in results] == [True, True]
    child = emu.execution_logs[results[1]["log_id"]]
    assert child["parent"] == {"log_id": meta.log_id, "tool_slug": "COMPOSIO_MULTI_EXECUTE_TOOL"}
    assert child["metadata"]["credential_source"] == "no_auth"
    link = session.execute_meta("COMPOSIO_MANAGE_CONNECTIONS", arguments={"toolkits": ["github"]})
    assert link.data["results"]["github"]["status"] == "ACTIVE"


def test_log_search_filters_by_session_user_status_toolkit_and_time(
    emu: Emulator, sdk: Any, client: Any
) -> None:
    one = sdk.create(user_id="u1", toolkits=["github", "gmail"])
    two = sdk.create(user_id="u2", toolkits=["gmail"])
    for session in (one, two):
        emu.set_connection(session.session_id, "gmail", "ACTIVE")
    emu.set_connection(one.session_id, "github", "ACTIVE")
    started = time.time() * 1000
    one.execute("GITHUB_GET_THE_AUTHENTICATED_USER")
    one.execute("GMAIL_SEND_EMAIL", arguments={"recipient_email": "a@example.com"})  # fails
    two.execute("GMAIL_FETCH_EMAILS", arguments={"max_results": 1})
    logs = client.logs.with_raw_response

    def messages(**body: Any) -> list[str]:
        found = strict(models.LogCreateToolExecutionResponse, logs.create_tool_execution(**body))
        return [entry.message.split()[0] for entry in found.logs]

    def where(field: str, value: str, operator: str = "==") -> dict[str, str]:
        return {"field": field, "operator": operator, "value": value}

    everything = ["GMAIL_FETCH_EMAILS", "GMAIL_SEND_EMAIL", "GITHUB_GET_THE_AUTHENTICATED_USER"]
    assert messages() == everything
    assert messages(filters=[where("session_id", two.session_id)]) == ["GMAIL_FETCH_EMAILS"]
    assert messages(filters=[where("user_id", "u1"), where("status", "failed")]) == [
        "GMAIL_SEND_EMAIL"
    ]
    assert messages(filters=[where("toolkit_slug", "git", "contains")]) == everything[2:]
    assert messages(time_range={"from": started, "to": time.time() * 1000 + 1}) == everything
    assert messages(time_range={"from": 0, "to": started - 1}) == []
    first = strict(models.LogCreateToolExecutionResponse, logs.create_tool_execution(limit=2))
    rest = strict(
        models.LogCreateToolExecutionResponse,
        logs.create_tool_execution(limit=2, cursor=first.next_cursor),
    )
    assert len(first.logs) == 2 and len(rest.logs) == 1 and rest.next_cursor is None


def test_log_search_rejects_an_unknown_filter_field(emu_http: httpx.Client) -> None:
    answer = emu_http.post(
        "/api/v3.1/logs/tool_execution",
        json={"filters": [{"field": "colour", "operator": "==", "value": "x"}]},
    )

    assert answer.status_code == HTTPStatus.BAD_REQUEST
    assert "payload.filters[0].field" in answer.json()["error"]["errors"][0]
