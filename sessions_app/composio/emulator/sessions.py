"""Tool router sessions: create, get, update, delete, list their toolkits, their config history;
session config.

Requests reach these handlers already checked against composio_client's params types
(`contract.py`); what is left here is what a type cannot say (unknown toolkit slugs, the config
version precondition) and turning request fields into the config Composio answers with."""

from __future__ import annotations

import copy
from typing import Any

from . import catalog as cat
from .errors import ApiError, unknown_toolkit
from .http import Response
from .ids import now_iso, token
from .paging import Query, paginate, query_bool, query_csv, query_first
from .state import EmulatorState

SESSION_TOOLKITS_DEFAULT_LIMIT = 20
SESSION_TOOLKITS_MAX_LIMIT = 50  # composio_client's SessionToolkitsParams: "max allowed is 50"
CONFIG_HISTORY_DEFAULT_LIMIT = 20
CONFIG_HISTORY_MAX_LIMIT = 100  # composio_client's SessionConfigHistoryQuery: "max allowed is 100"

TOOL_ROUTER_TOOLS = ["COMPOSIO_SEARCH_TOOLS", "COMPOSIO_MULTI_EXECUTE_TOOL"]
MANAGE_CONNECTIONS_TOOL = "COMPOSIO_MANAGE_CONNECTIONS"


class SessionsMixin(EmulatorState):
    """The `/tool_router/session` endpoints and the config each session stores."""

    def _h_session_create(self, params: dict[str, str], query: Any, body: Any) -> Response:
        with self._lock:
            config = _default_config(body["user_id"])
            self._apply_config(config, body)
            session_id = f"trs_{token()}"
            session = {
                "session_id": session_id,
                "mcp": {"type": "http", "url": f"{self.base_url}/tool_router/{session_id}/mcp"},
                "tool_router_tools": _tool_router_tools(config),
                "config": config,
                "config_version": 1,
                "created_at": now_iso(),
            }
            entry = _history_entry(session, body)
            self._persist(
                ("put", "session", session_id, session),
                ("put", "config_history", entry_key(entry), entry),
            )
            self._sessions[session_id] = session
            self._config_history[entry_key(entry)] = entry
            return Response(201, _session_body(session), {})

    def _h_session_get(self, params: dict[str, str], query: Any, body: Any) -> Response:
        with self._lock:
            session = self._session_or_404(params["session_id"])
            return Response(200, _session_body(session), {})

    def _h_session_update(self, params: dict[str, str], query: Any, body: Any) -> Response:
        expected = body.get("expected_config_version")
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
            self._apply_config(config, body)
            session = {
                **session,
                "config": config,
                "tool_router_tools": _tool_router_tools(config),
                "config_version": session["config_version"] + 1,
            }
            entry = _history_entry(session, body)
            self._persist(
                ("put", "session", session["session_id"], session),
                ("put", "config_history", entry_key(entry), entry),
            )
            self._sessions[session["session_id"]] = session
            self._config_history[entry_key(entry)] = entry
            return Response(200, _session_body(session), {})

    def _h_session_delete(self, params: dict[str, str], query: Any, body: Any) -> Response:
        session_id = params["session_id"]
        with self._lock:
            self._session_or_404(session_id)
            history = [k for k, e in self._config_history.items() if e["session_id"] == session_id]
            self._persist(
                ("delete", "session", session_id, None),
                *(("delete", "config_history", key, None) for key in history),
            )
            del self._sessions[session_id]
            for key in history:
                del self._config_history[key]
            return Response(200, {"session_id": session_id, "deleted": True}, {})

    def _h_session_config_history(
        self, params: dict[str, str], query: Query, body: Any
    ) -> Response:
        with self._lock:
            session = self._session_or_404(params["session_id"])
            entries = [
                e for e in self._config_history.values() if e["session_id"] == session["session_id"]
            ]
            if not entries:  # a session kept by a state file written before history was kept
                entries = [_history_entry(session, None, at=session["created_at"])]
            entries.sort(key=lambda e: e["version"], reverse=True)
            items = [
                {
                    "version": e["version"],
                    "config": copy.deepcopy(e["config"]),
                    "created_at": e["created_at"],
                    "is_current": e["version"] == session["config_version"],
                }
                for e in entries
            ]
        page = paginate(
            items,
            query,
            default_limit=CONFIG_HISTORY_DEFAULT_LIMIT,
            max_limit=CONFIG_HISTORY_MAX_LIMIT,
        )
        return Response(200, page, {})

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

    def _apply_config(self, config: dict[str, Any], body: dict[str, Any]) -> None:
        """Store a (valid) request's fields in `config` as the response spells them.

        Only the fields sent change. On PATCH `null` removes a stored override: the field goes
        back to its default (`toolkits`, `tools`, `tags`: no restriction; the maps: empty)."""
        defaults = _default_config(config["user_id"])
        for key, value in body.items():
            if key not in _CONFIG_FIELDS:
                continue  # expected_config_version, hooks, experimental: not stored
            if value is None:
                if key in defaults:
                    config[key] = copy.deepcopy(defaults[key])
                else:  # workbench, multi_account, proxy_execute: absent unless set
                    config.pop(key, None)
            elif key == "toolkits":
                config[key] = self._parse_toolkits(value)
            else:
                config[key] = _CONFIG_FIELDS[key](value, config.get(key))

    def _parse_toolkits(self, value: dict[str, list[str]]) -> dict[str, list[str]]:
        """`{"enable"|"disable"|"require_approval": [slug, ...]}` as the stored config: slugs
        lowercased and de-duplicated; a slug outside the catalog is a 400."""
        out: dict[str, list[str]] = {}
        for key, slugs in value.items():
            normalized = _slugs(slugs)
            unknown = [s for s in normalized if self._toolkit(s) is None]
            if unknown:
                raise ApiError(
                    400,
                    f"Unknown toolkit slug(s): {', '.join(unknown)}",
                    errors=[unknown_toolkit(s) for s in unknown],
                    suggested_fix="Use slugs returned by GET /api/v3.1/toolkits",
                )
            out[_ENABLED.get(key, key)] = normalized
        return out


def entry_key(entry: dict[str, Any]) -> str:
    """The state-file key of one config history entry: session id and version."""
    return f"{entry['session_id']}:{entry['version']}"


def _history_entry(
    session: dict[str, Any], change: dict[str, Any] | None, *, at: str | None = None
) -> dict[str, Any]:
    """One config history entry: the session's config at its version, when, and the request
    fields that made it (kept for tests and the state file; the API answers the config)."""
    return {
        "session_id": session["session_id"],
        "version": session["config_version"],
        "created_at": at or now_iso(),
        "config": copy.deepcopy(session["config"]),
        "change": copy.deepcopy(change),
    }


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
        # composio_client's SessionCreateBody: "Omission on create or an empty object enables
        # it with charges hidden."
        "instant": _instant({}, False),
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


# Request field -> response field. Requests say enable/disable, responses enabled/disabled.
_ENABLED = {"enable": "enabled", "disable": "disabled"}


def _slugs(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v.strip().lower() for v in values))


def _renamed(value: dict[str, Any]) -> dict[str, Any]:
    """`{"enable": ..., "disable": ..., ...}` as `{"enabled": ..., "disabled": ..., ...}`."""
    return {_ENABLED.get(k, k): copy.deepcopy(v) for k, v in value.items()}


def _tags(value: list[str] | dict[str, Any], current: Any = None) -> dict[str, Any]:
    """MCP tag hints: "Array format is treated as enabled list" (composio_client's
    SessionCreateParams.tags); the object's enable/disable become enabled/disabled."""
    return {"enabled": list(value)} if isinstance(value, list) else _renamed(value)


def _tools(value: dict[str, dict[str, Any]], current: Any = None) -> dict[str, Any]:
    """Per-toolkit tool filters, keyed by lowercase toolkit slug, with tags normalised."""
    out = {}
    for slug, rule in value.items():
        renamed = _renamed(rule)
        if "tags" in renamed:
            renamed["tags"] = _tags(renamed["tags"])
        out[slug.lower()] = renamed
    return out


def _instant(value: Any, current: Any) -> Any:
    """`false`, or the instant object the response model has: `toolkits` and `tools` filters
    renamed, `return_instant_charge` / `return_prices_in_search` defaulting to false. On PATCH
    an object keeps what it omits ("omitted fields are preserved") and re-enables a `false`."""
    if value is False:
        return False
    base = (
        dict(current)
        if isinstance(current, dict)
        else {"return_instant_charge": False, "return_prices_in_search": False}
    )
    for key, item in value.items():
        if key == "toolkits":
            base[key] = {_ENABLED[k]: _slugs(v) for k, v in item.items()}
        elif key == "tools":
            base[key] = {slug.lower(): _renamed(rule) for slug, rule in item.items()} or None
        else:
            base[key] = item
    return base


def _manage_connections(value: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """`current` updated from a request's `manage_connections` (only the keys sent)."""
    return {**current, **_renamed(value)}


def _workbench(value: dict[str, Any], current: Any) -> dict[str, Any]:
    """The workbench as the response names it (`enable_proxy_execution` ->
    `proxy_execution_enabled`, `enable_tool_execution` -> `tool_execution_enabled`)."""
    names = {
        "enable_proxy_execution": "proxy_execution_enabled",
        "enable_tool_execution": "tool_execution_enabled",
    }
    return {**(current or {}), **{names.get(k, k): v for k, v in value.items()}}


# How each stored request field becomes config: (value sent, value stored) -> value to store.
_CONFIG_FIELDS: dict[str, Any] = {
    "toolkits": None,  # SessionsMixin._parse_toolkits: it needs the catalog
    "manage_connections": _manage_connections,
    "auth_configs": lambda v, _: {k.lower(): s for k, s in v.items()},
    "connected_accounts": lambda v, _: {k.lower(): list(ids) for k, ids in v.items()},
    "tools": _tools,
    "tags": _tags,
    "preload": lambda v, _: {"tools": copy.deepcopy(v.get("tools", []))},
    "search": lambda v, current: {**(current or {}), **v},
    "execute": lambda v, current: {**(current or {}), **v},
    "instant": _instant,
    "workbench": _workbench,
    "multi_account": lambda v, current: {**(current or {}), **v},
    "proxy_execute": lambda v, _: dict(v),
}
