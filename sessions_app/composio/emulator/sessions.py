"""Tool router sessions: create, get, update, delete, list their toolkits; session config."""

from __future__ import annotations

import copy
from typing import Any

from . import catalog as cat
from .errors import ApiError, unknown_toolkit, validation_error
from .http import Response
from .ids import now_iso, token
from .paging import Query, paginate, query_bool, query_csv, query_first
from .state import EmulatorState

SESSION_TOOLKITS_DEFAULT_LIMIT = 20
SESSION_TOOLKITS_MAX_LIMIT = 50  # composio_client's SessionToolkitsParams: "max allowed is 50"

TOOL_ROUTER_TOOLS = ["COMPOSIO_SEARCH_TOOLS", "COMPOSIO_MULTI_EXECUTE_TOOL"]
MANAGE_CONNECTIONS_TOOL = "COMPOSIO_MANAGE_CONNECTIONS"


class SessionsMixin(EmulatorState):
    """The `/tool_router/session` endpoints and the config each session stores."""

    def _h_session_create(self, params: dict[str, str], query: Any, body: Any) -> Response:
        if not isinstance(body, dict):
            raise validation_error("payload", "Expected object")
        user_id = body.get("user_id")
        if "user_id" not in body:
            raise validation_error("payload.user_id", "Required")
        if not isinstance(user_id, str) or not user_id.strip():
            raise validation_error("payload.user_id", "Expected a non-empty string")
        with self._lock:
            config = _default_config(user_id)
            self._apply_config(config, body, creating=True)
            session_id = f"trs_{token()}"
            session = {
                "session_id": session_id,
                "mcp": {"type": "http", "url": f"{self.base_url}/tool_router/{session_id}/mcp"},
                "tool_router_tools": _tool_router_tools(config),
                "config": config,
                "config_version": 1,
                "created_at": now_iso(),
            }
            self._persist(("put", "session", session_id, session))
            self._sessions[session_id] = session
            return Response(201, _session_body(session), {})

    def _h_session_get(self, params: dict[str, str], query: Any, body: Any) -> Response:
        with self._lock:
            session = self._session_or_404(params["session_id"])
            return Response(200, _session_body(session), {})

    def _h_session_update(self, params: dict[str, str], query: Any, body: Any) -> Response:
        if not isinstance(body, dict):
            raise validation_error("payload", "Expected object")
        expected = body.get("expected_config_version")
        if "expected_config_version" in body and (
            isinstance(expected, bool) or not isinstance(expected, int) or expected < 1
        ):
            raise validation_error("payload.expected_config_version", "Expected positive integer")
        with self._lock:
            session = self._session_or_404(params["session_id"])
            if expected is not None and expected != session["config_version"]:
                raise ApiError(
                    409,
                    f"Session config version mismatch: expected {expected}, "
                    f"current is {session['config_version']}",
                    slug="ToolRouterV2_SessionConfigConflict",
                    code=10409,
                    suggested_fix="Re-fetch the session and retry against its config_version",
                )
            config = copy.deepcopy(session["config"])
            self._apply_config(config, body, creating=False)
            session = {
                **session,
                "config": config,
                "tool_router_tools": _tool_router_tools(config),
                "config_version": session["config_version"] + 1,
            }
            self._persist(("put", "session", session["session_id"], session))
            self._sessions[session["session_id"]] = session
            return Response(200, _session_body(session), {})

    def _h_session_delete(self, params: dict[str, str], query: Any, body: Any) -> Response:
        session_id = params["session_id"]
        with self._lock:
            self._session_or_404(session_id)
            self._persist(("delete", "session", session_id, None))
            del self._sessions[session_id]
            return Response(200, {"session_id": session_id, "deleted": True}, {})

    def _h_session_toolkits(self, params: dict[str, str], query: Query, body: Any) -> Response:
        with self._lock:
            session = self._session_or_404(params["session_id"])
            wanted = query_csv(query, "toolkits")
            if wanted is not None:
                slugs = [s.lower() for s in wanted]
                toolkits = [tk for s in slugs if (tk := self._toolkit(s)) is not None]
            else:
                toolkits = self._session_toolkits(session["config"])
            search = query_first(query, "search")
            if search:
                toolkits = [tk for tk in toolkits if cat.matches_search(tk, search)]
            connections = {
                tk["slug"]: self._session_connection(session, tk["slug"]) for tk in toolkits
            }
            if query_bool(query, "is_connected"):
                toolkits = [
                    tk
                    for tk in toolkits
                    if (connections[tk["slug"]] or {}).get("status") == "ACTIVE"
                ]
            items = [cat.session_toolkit_item(tk, connections[tk["slug"]]) for tk in toolkits]
        page = paginate(
            items,
            query,
            default_limit=SESSION_TOOLKITS_DEFAULT_LIMIT,
            max_limit=SESSION_TOOLKITS_MAX_LIMIT,
        )
        return Response(200, page, {})

    # Config helpers ----------------------------------------------------------------------

    def _apply_config(
        self, config: dict[str, Any], body: dict[str, Any], *, creating: bool
    ) -> None:
        """Validate request fields (enable/disable) and store them as response fields.

        Fields are checked in a fixed order, so the first invalid one is the one reported.
        """
        if "toolkits" in body:
            value = body["toolkits"]
            config["toolkits"] = (
                None if value is None and not creating else self._parse_toolkits(value)
            )
        if "manage_connections" in body:
            value = body["manage_connections"]
            if value is None and not creating:
                config["manage_connections"] = {"enabled": True, "callback_url": None}
            else:
                config["manage_connections"] = _parse_manage_connections(
                    value, config["manage_connections"]
                )
        _apply_account_fields(config, body, creating=creating)
        _apply_tool_fields(config, body)
        for key in ("search", "execute", "instant"):
            if key in body and body[key] is not None:
                config[key] = body[key]
        for key in ("workbench", "multi_account", "proxy_execute"):
            if key in body:
                config[key] = body[key]

    def _parse_toolkits(self, value: Any) -> dict[str, list[str]]:
        """`{"enable"|"disable"|"require_approval": [slug, ...]}` as the stored config."""
        invalid = validation_error("payload.toolkits")
        if not isinstance(value, dict) or not value:
            raise invalid
        allowed = {"enable", "disable", "require_approval"}
        if set(value) - allowed or ("enable" in value and "disable" in value):
            raise invalid
        out: dict[str, list[str]] = {}
        for key in ("enable", "disable", "require_approval"):
            if key not in value:
                continue
            slugs = value[key]
            if not isinstance(slugs, list) or not all(isinstance(s, str) for s in slugs):
                raise invalid
            normalized = list(dict.fromkeys(s.strip().lower() for s in slugs))
            unknown = [s for s in normalized if self._toolkit(s) is None]
            if unknown:
                raise ApiError(
                    400,
                    f"Unknown toolkit slug(s): {', '.join(unknown)}",
                    errors=[unknown_toolkit(s) for s in unknown],
                    suggested_fix="Use slugs returned by GET /api/v3.1/toolkits",
                )
            out[{"enable": "enabled", "disable": "disabled"}.get(key, key)] = normalized
        return out


def _default_config(user_id: str) -> dict[str, Any]:
    """The config a new session starts from, before the request's fields apply."""
    return {
        "user_id": user_id,
        "toolkits": None,
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


def _tool_router_tools(config: dict[str, Any]) -> list[str]:
    """The meta tools a session with `config` exposes."""
    tools = list(TOOL_ROUTER_TOOLS)
    if config["manage_connections"].get("enabled", True):
        tools.append(MANAGE_CONNECTIONS_TOOL)
    return tools


def _session_body(session: dict[str, Any]) -> dict[str, Any]:
    """A copy of the fields Composio answers for a session (not its connections)."""
    keys = ("session_id", "mcp", "tool_router_tools", "config", "config_version")
    return copy.deepcopy({k: session[k] for k in keys})


def _apply_account_fields(config: dict[str, Any], body: dict[str, Any], *, creating: bool) -> None:
    """Store `auth_configs` and `connected_accounts` with lowercase toolkit keys."""
    if "auth_configs" in body:
        value = body["auth_configs"]
        if value is None and not creating:
            value = {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise validation_error("payload.auth_configs")
        config["auth_configs"] = {k.lower(): v for k, v in value.items()}
    if "connected_accounts" in body:
        value = body["connected_accounts"]
        if value is None and not creating:
            value = {}
        if not isinstance(value, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in value.values()
        ):
            raise validation_error("payload.connected_accounts")
        config["connected_accounts"] = {k.lower(): list(v) for k, v in value.items()}


def _apply_tool_fields(config: dict[str, Any], body: dict[str, Any]) -> None:
    """Store `tools`, `tags` and `preload`, renaming enable/disable to enabled/disabled."""
    if "tools" in body:
        value = body["tools"]
        if value is not None and not isinstance(value, dict):
            raise validation_error("payload.tools")
        config["tools"] = (
            None if value is None else {k: _enable_to_enabled(v) for k, v in value.items()}
        )
    if "tags" in body:
        config["tags"] = _enable_to_enabled(body["tags"])
    if "preload" in body:
        value = body["preload"]
        if not isinstance(value, dict):
            raise validation_error("payload.preload")
        config["preload"] = {"tools": value.get("tools", [])}


def _enable_to_enabled(value: Any) -> Any:
    """A request's `{"enable": ..., "disable": ...}` as the response's `enabled`/`disabled`."""
    if not isinstance(value, dict):
        return value
    names = {"enable": "enabled", "disable": "disabled"}
    return {names.get(k, k): v for k, v in value.items()}


def _parse_manage_connections(value: Any, current: dict[str, Any]) -> dict[str, Any]:
    """`current` updated from a request's `manage_connections` object."""
    if not isinstance(value, dict):
        raise validation_error("payload.manage_connections")
    out = dict(current)
    if "enable" in value:
        if not isinstance(value["enable"], bool):
            raise validation_error("payload.manage_connections.enable", "Expected boolean")
        out["enabled"] = value["enable"]
    if "callback_url" in value:
        cb = value["callback_url"]
        if cb is not None and not isinstance(cb, str):
            raise validation_error("payload.manage_connections.callback_url", "Expected string")
        out["callback_url"] = cb
    for key in ("enable_wait_for_connections", "enable_connection_removal"):
        if key in value:
            out[key] = value[key]
    return out
