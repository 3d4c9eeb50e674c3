"""A loopback HTTP server speaking enough of Composio's v3.1 API for the real SDK.

Pure standard library on purpose: it runs inside tests and inside a management command, and
must never import Django.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import math
import re
import secrets
import socket
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import catalog as cat
from .faults import Faults

API_PREFIXES = ("/api/v3.1", "/api/v3")
CONTROL_PREFIX = "/_emulator"
REDACTED = "<redacted>"
HOLD_TIMEOUT_SECONDS = 60.0

TOOLKITS_DEFAULT_LIMIT = 20
TOOLKITS_MAX_LIMIT = 1000
SESSION_TOOLKITS_DEFAULT_LIMIT = 20
SESSION_TOOLKITS_MAX_LIMIT = 50  # composio_client's SessionToolkitsParams: "max allowed is 50"

CONNECTION_STATUSES = ("ACTIVE", "INITIATED", "FAILED", "EXPIRED")
TOOL_ROUTER_TOOLS = ["COMPOSIO_SEARCH_TOOLS", "COMPOSIO_MULTI_EXECUTE_TOOL"]
MANAGE_CONNECTIONS_TOOL = "COMPOSIO_MANAGE_CONNECTIONS"

_ALPHANUM = string.ascii_lowercase + string.digits

_STATUS_SLUGS = {
    400: "HTTP_BadRequest",
    401: "HTTP_Unauthorized",
    403: "HTTP_Forbidden",
    404: "HTTP_NotFound",
    405: "HTTP_MethodNotAllowed",
    408: "HTTP_RequestTimeout",
    409: "HTTP_Conflict",
    422: "HTTP_UnprocessableEntity",
    429: "HTTP_TooManyRequests",
    500: "HTTP_InternalServerError",
    502: "HTTP_BadGateway",
    503: "HTTP_ServiceUnavailable",
    504: "HTTP_GatewayTimeout",
}

_SESSION_RE = r"/tool_router/session/(?P<session_id>[^/]+)"
# (method, path regex relative to the API prefix, endpoint name)
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/tool_router/session/?"), "session.create"),
    ("GET", re.compile(_SESSION_RE + "/toolkits/?"), "session.toolkits"),
    ("POST", re.compile(_SESSION_RE + "/link/?"), "session.link"),
    ("GET", re.compile(_SESSION_RE + "/?"), "session.get"),
    ("PATCH", re.compile(_SESSION_RE + "/?"), "session.update"),
    ("DELETE", re.compile(_SESSION_RE + "/?"), "session.delete"),
    ("GET", re.compile(r"/toolkits/?"), "toolkits.list"),
    ("GET", re.compile(r"/toolkits/(?P<slug>[^/]+)/?"), "toolkits.get"),
]
_MCP_RE = re.compile(r"/tool_router/(?P<session_id>[^/]+)/mcp/?")

ENDPOINTS = tuple(name for _, _, name in _ROUTES) + ("mcp", "unknown")


def _token(n: int = 12) -> str:
    return "".join(secrets.choice(_ALPHANUM) for _ in range(n))


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _error_code(status: int) -> int:
    return 10000 + status


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it (the x-api-key value is never kept)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: Any
    endpoint: str
    at: float
    authenticated: bool = False


class ApiError(Exception):
    """Raised by handlers; rendered as Composio's error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        slug: str | None = None,
        code: int | None = None,
        errors: list[str] | None = None,
        suggested_fix: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.slug = slug or _STATUS_SLUGS.get(status, f"HTTP_{status}")
        self.code = code if code is not None else _error_code(status)
        self.errors = errors
        self.suggested_fix = suggested_fix
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "code": self.code,
            "slug": self.slug,
            "status": self.status,
            "request_id": request_id,
        }
        if self.suggested_fix:
            error["suggested_fix"] = self.suggested_fix
        if self.errors:
            error["errors"] = list(self.errors)
        return {"error": error}


def _validation_error(field: str, detail: str = "Invalid input") -> ApiError:
    return ApiError(
        400,
        "Validation error while processing request",
        errors=[f"Error in {field}: {detail}"],
    )


def _session_not_found(session_id: str) -> ApiError:
    return ApiError(
        404,
        f"Tool router session {session_id} not found",
        slug="ToolRouterV2_SessionNotFound",
        code=10404,
    )


@dataclass
class _Response:
    status: int
    body: Any
    headers: dict[str, str]
    raw: bytes | None = None
    content_type: str = "application/json"


class Emulator:
    """Composio v3.1 emulator on a loopback port. See docs/emulator.md."""

    def __init__(
        self,
        api_key: str = "emu-test-key",
        host: str = "127.0.0.1",
        port: int = 0,
        catalog: list[dict[str, Any]] | None = None,
        access_log: Callable[[str], None] | None = None,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.access_log = access_log
        self.faults = Faults()
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._sessions: dict[str, dict[str, Any]] = {}
        self._links: dict[str, dict[str, Any]] = {}
        self._catalog: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.set_catalog(cat.load_catalog() if catalog is None else catalog)

    # Lifecycle ---------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.emulator = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"composio-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # State for tests ---------------------------------------------------------------------

    def reset(self) -> None:
        """Forget sessions, links, the request log and faults; keep the catalog."""
        with self._lock:
            self._sessions.clear()
            self._links.clear()
            self._requests.clear()
        self.faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, endpoint: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self._requests if endpoint is None or r.endpoint == endpoint)

    @property
    def sessions(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._sessions)

    @property
    def catalog(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._catalog)

    def set_catalog(self, toolkits: list[dict[str, Any]]) -> None:
        entries = [cat.normalize_entry(tk) for tk in toolkits]
        with self._lock:
            self._catalog = entries

    def set_connection(self, session_id: str, toolkit_slug: str, status: str | None) -> None:
        """Set (or with None remove) the connected account of one toolkit in one session."""
        if status is not None and status not in CONNECTION_STATUSES:
            raise ValueError(f"status must be one of {CONNECTION_STATUSES} or None")
        slug = toolkit_slug.lower()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise KeyError(f"unknown session {session_id}")
            connections = session["connections"]
            if status is None:
                connections.pop(slug, None)
                return
            account = connections.get(slug)
            if account is None:
                tk = self._toolkit(slug)
                connections[slug] = self._new_account(session, slug, tk, status)
            else:
                account["status"] = status

    # Internals ---------------------------------------------------------------------------

    def _toolkit(self, slug: str) -> dict[str, Any] | None:
        for tk in self._catalog:
            if tk["slug"] == slug:
                return tk
        return None

    def _new_account(
        self, session: dict[str, Any], slug: str, tk: dict[str, Any] | None, status: str
    ) -> dict[str, Any]:
        schemes = [s for s in (tk or {}).get("auth_schemes", []) if s != "NO_AUTH"]
        managed = (tk or {}).get("composio_managed_auth_schemes", [])
        scheme = (managed or schemes or ["OAUTH2"])[0]
        auth_config_id = session["config"]["auth_configs"].get(slug) or f"ac_{_token()}"
        return {
            "id": f"ca_{_token()}",
            "user_id": session["config"]["user_id"],
            "status": status,
            "created_at": _now_iso(),
            "auth_config": {
                "id": auth_config_id,
                "auth_scheme": scheme,
                "is_composio_managed": scheme in managed,
            },
        }

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(req)

    def _log(self, line: str) -> None:
        if self.access_log is not None:
            # Logging must never break a response.
            with contextlib.suppress(Exception):
                self.access_log(line)

    def _wait(self, seconds: float) -> None:
        # Interruptible sleep: stop() wakes latency-delayed requests at once.
        if seconds > 0:
            self._stopping.wait(seconds)

    def _wait_holds(self, endpoint: str) -> None:
        deadline = time.monotonic() + HOLD_TIMEOUT_SECONDS
        for event in self.faults.holds_for(endpoint):
            while not event.wait(0.05):
                if self._stopping.is_set() or time.monotonic() > deadline:
                    return

    # API handlers ------------------------------------------------------------------------

    def dispatch(
        self, endpoint: str, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> _Response:
        handler = getattr(self, "_h_" + endpoint.replace(".", "_"))
        return handler(params, query, body)

    def _session_or_404(self, session_id: str) -> dict[str, Any]:
        session = self._sessions.get(session_id)
        if session is None:
            raise _session_not_found(session_id)
        return session

    def _h_unknown(self, params: dict[str, str], query: Any, body: Any) -> _Response:
        raise ApiError(404, "Not found", errors=["The requested endpoint does not exist"])

    def _h_mcp(self, params: dict[str, str], query: Any, body: Any) -> _Response:
        with self._lock:
            self._session_or_404(params["session_id"])
        raise ApiError(501, "The Composio emulator does not implement the MCP endpoint")

    def _h_session_create(self, params: dict[str, str], query: Any, body: Any) -> _Response:
        if not isinstance(body, dict):
            raise _validation_error("payload", "Expected object")
        user_id = body.get("user_id")
        if "user_id" not in body:
            raise _validation_error("payload.user_id", "Required")
        if not isinstance(user_id, str) or not user_id.strip():
            raise _validation_error("payload.user_id", "Expected a non-empty string")
        with self._lock:
            config = self._default_config(user_id)
            self._apply_config(config, body, creating=True)
            session_id = f"trs_{_token()}"
            session = {
                "session_id": session_id,
                "mcp": {"type": "http", "url": f"{self.base_url}/tool_router/{session_id}/mcp"},
                "tool_router_tools": self._tool_router_tools(config),
                "config": config,
                "config_version": 1,
                "created_at": _now_iso(),
                "connections": {},
            }
            self._sessions[session_id] = session
            return _Response(201, self._session_body(session), {})

    def _h_session_get(self, params: dict[str, str], query: Any, body: Any) -> _Response:
        with self._lock:
            session = self._session_or_404(params["session_id"])
            return _Response(200, self._session_body(session), {})

    def _h_session_update(self, params: dict[str, str], query: Any, body: Any) -> _Response:
        if not isinstance(body, dict):
            raise _validation_error("payload", "Expected object")
        expected = body.get("expected_config_version")
        if "expected_config_version" in body and (
            isinstance(expected, bool) or not isinstance(expected, int) or expected < 1
        ):
            raise _validation_error("payload.expected_config_version", "Expected positive integer")
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
            session["config"] = config
            session["tool_router_tools"] = self._tool_router_tools(config)
            session["config_version"] += 1
            return _Response(200, self._session_body(session), {})

    def _h_session_delete(self, params: dict[str, str], query: Any, body: Any) -> _Response:
        session_id = params["session_id"]
        with self._lock:
            self._session_or_404(session_id)
            del self._sessions[session_id]
            return _Response(200, {"session_id": session_id, "deleted": True}, {})

    def _h_session_toolkits(
        self, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> _Response:
        with self._lock:
            session = self._session_or_404(params["session_id"])
            wanted = _csv(query, "toolkits")
            if wanted is not None:
                slugs = [s.lower() for s in wanted]
                toolkits = [tk for s in slugs if (tk := self._toolkit(s)) is not None]
            else:
                toolkits = self._session_toolkits(session["config"])
            search = _first(query, "search")
            if search:
                toolkits = [tk for tk in toolkits if cat.matches_search(tk, search)]
            connections = session["connections"]
            if _bool(query, "is_connected"):
                toolkits = [
                    tk
                    for tk in toolkits
                    if connections.get(tk["slug"], {}).get("status") == "ACTIVE"
                ]
            items = [cat.session_toolkit_item(tk, connections.get(tk["slug"])) for tk in toolkits]
        page = _paginate(
            items,
            query,
            default_limit=SESSION_TOOLKITS_DEFAULT_LIMIT,
            max_limit=SESSION_TOOLKITS_MAX_LIMIT,
        )
        return _Response(200, page, {})

    def _h_session_link(self, params: dict[str, str], query: Any, body: Any) -> _Response:
        if not isinstance(body, dict):
            raise _validation_error("payload", "Expected object")
        toolkit = body.get("toolkit")
        if not isinstance(toolkit, str) or not toolkit.strip():
            raise _validation_error("payload.toolkit", "Required")
        callback_url = body.get("callback_url")
        if callback_url is not None and not isinstance(callback_url, str):
            raise _validation_error("payload.callback_url", "Expected string")
        slug = toolkit.strip().lower()
        with self._lock:
            session = self._session_or_404(params["session_id"])
            tk = self._toolkit(slug)
            if tk is None:
                raise ApiError(400, f"Toolkit '{slug}' not found", errors=[_unknown(slug)])
            if tk not in self._session_toolkits(session["config"]):
                raise ApiError(400, f"Toolkit '{slug}' is not enabled in session")
            if tk["no_auth"]:
                raise ApiError(400, f"Toolkit '{slug}' does not require authentication")
            connections = session["connections"]
            account = connections.get(slug)
            if account is None or account["status"] != "INITIATED":
                account = self._new_account(session, slug, tk, "INITIATED")
                connections[slug] = account
            link_token = f"lk_{_token(16)}"
            callback = callback_url or session["config"]["manage_connections"]["callback_url"]
            self._links[link_token] = {
                "session_id": session["session_id"],
                "toolkit": slug,
                "callback_url": callback,
            }
            body_out = {
                "link_token": link_token,
                "redirect_url": f"{self.base_url}{CONTROL_PREFIX}/connect/{link_token}",
                "connected_account_id": account["id"],
            }
            return _Response(201, body_out, {})

    def _h_toolkits_list(
        self, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> _Response:
        with self._lock:
            toolkits = list(self._catalog)
        category = _first(query, "category")
        if category:
            toolkits = [tk for tk in toolkits if cat.matches_category(tk, category)]
        search = _first(query, "search")
        if search:
            toolkits = [tk for tk in toolkits if cat.matches_search(tk, search)]
        if _first(query, "managed_by") == "project" or _first(query, "type") == "custom":
            toolkits = []  # every emulated toolkit is a native, Composio-managed one
        if _first(query, "sort_by") == "alphabetically":
            toolkits = sorted(toolkits, key=lambda tk: tk["name"].lower())
        items = [cat.toolkit_list_item(tk) for tk in toolkits]
        page = _paginate(
            items, query, default_limit=TOOLKITS_DEFAULT_LIMIT, max_limit=TOOLKITS_MAX_LIMIT
        )
        return _Response(200, page, {})

    def _h_toolkits_get(self, params: dict[str, str], query: Any, body: Any) -> _Response:
        slug = params["slug"].lower()
        with self._lock:
            tk = self._toolkit(slug)
        if tk is None:
            raise ApiError(404, f"Toolkit {slug} not found", slug="Toolkit_NotFound", code=10404)
        return _Response(200, cat.toolkit_detail(tk), {})

    # Control API -------------------------------------------------------------------------

    def control(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> _Response:
        route = path[len(CONTROL_PREFIX) :].rstrip("/") or "/"
        if method == "GET" and route == "/health":
            with self._lock:
                data = {
                    "status": "ok",
                    "base_url": self.base_url,
                    "sessions": len(self._sessions),
                    "requests": len(self._requests),
                    "toolkits": len(self._catalog),
                }
            data["faults"] = self.faults.snapshot()
            return _Response(200, data, {})
        if method == "GET" and route == "/requests":
            endpoint = _first(query, "endpoint")
            reqs = [r for r in self.requests if endpoint is None or r.endpoint == endpoint]
            counts: dict[str, int] = {}
            for r in self.requests:
                counts[r.endpoint] = counts.get(r.endpoint, 0) + 1
            data = {
                "total": len(reqs),
                "counts": counts,
                "requests": [
                    {
                        "method": r.method,
                        "path": r.path,
                        "query": r.query,
                        "endpoint": r.endpoint,
                        "authenticated": r.authenticated,
                        "at": r.at,
                    }
                    for r in reqs
                ],
            }
            return _Response(200, data, {})
        if method == "POST" and route == "/faults":
            if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
                raise ApiError(400, 'Expected {"kind": ..., ...}')
            kwargs = {k: v for k, v in body.items() if k != "kind"}
            try:
                self.faults.add(body["kind"], **kwargs)
            except (TypeError, ValueError) as exc:
                raise ApiError(400, str(exc)) from exc
            return _Response(201, {"ok": True, "faults": self.faults.snapshot()}, {})
        if method == "DELETE" and route == "/faults":
            self.faults.clear()
            return _Response(200, {"ok": True}, {})
        if method == "POST" and route == "/reset":
            self.reset()
            return _Response(200, {"ok": True}, {})
        if method == "POST" and route == "/catalog":
            if not isinstance(body, dict) or not isinstance(body.get("toolkits"), list):
                raise ApiError(400, 'Expected {"toolkits": [...]}')
            self.set_catalog(body["toolkits"])
            return _Response(200, {"ok": True, "toolkits": len(body["toolkits"])}, {})
        if method == "POST" and route == "/connections":
            if not isinstance(body, dict):
                raise ApiError(400, 'Expected {"session_id", "toolkit", "status"}')
            try:
                self.set_connection(body["session_id"], body["toolkit"], body.get("status"))
            except KeyError as exc:
                raise ApiError(404, f"Unknown session or missing field: {exc}") from exc
            except ValueError as exc:
                raise ApiError(400, str(exc)) from exc
            return _Response(200, {"ok": True}, {})
        match = re.fullmatch(r"/connect/(?P<token>[^/]+)", route)
        if method == "GET" and match:
            return self._complete_link(match["token"], _first(query, "status") or "ACTIVE")
        raise ApiError(404, f"Unknown emulator control route {method} {path}")

    def _complete_link(self, token: str, status: str) -> _Response:
        """Stand-in for the hosted auth page: marks the connection and follows callback_url."""
        with self._lock:
            link = self._links.get(token)
        if link is None:
            raise ApiError(404, "Unknown or expired link token")
        try:
            self.set_connection(link["session_id"], link["toolkit"], status.upper())
        except (KeyError, ValueError) as exc:
            raise ApiError(400, str(exc)) from exc
        with self._lock:
            account = self._sessions[link["session_id"]]["connections"][link["toolkit"]]
        callback = link["callback_url"]
        if callback:
            sep = "&" if "?" in callback else "?"
            outcome = "success" if status.upper() == "ACTIVE" else "failed"
            location = f"{callback}{sep}status={outcome}&connected_account_id={account['id']}"
            return _Response(302, None, {"Location": location}, raw=b"")
        html = f"<!doctype html><title>Connected</title><p>{link['toolkit']}: {status}</p>"
        return _Response(200, None, {}, raw=html.encode(), content_type="text/html")

    # Config helpers ----------------------------------------------------------------------

    @staticmethod
    def _default_config(user_id: str) -> dict[str, Any]:
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

    @staticmethod
    def _tool_router_tools(config: dict[str, Any]) -> list[str]:
        tools = list(TOOL_ROUTER_TOOLS)
        if config["manage_connections"].get("enabled", True):
            tools.append(MANAGE_CONNECTIONS_TOOL)
        return tools

    def _session_toolkits(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        toolkits = config.get("toolkits")
        if toolkits and "enabled" in toolkits:
            return [tk for s in toolkits["enabled"] if (tk := self._toolkit(s)) is not None]
        disabled = set(toolkits.get("disabled", [])) if toolkits else set()
        return [tk for tk in self._catalog if tk["slug"] not in disabled]

    def _session_body(self, session: dict[str, Any]) -> dict[str, Any]:
        keys = ("session_id", "mcp", "tool_router_tools", "config", "config_version")
        return copy.deepcopy({k: session[k] for k in keys})

    def _apply_config(
        self, config: dict[str, Any], body: dict[str, Any], *, creating: bool
    ) -> None:
        """Validate request fields (enable/disable) and store them as response fields."""
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
        if "auth_configs" in body:
            value = body["auth_configs"]
            if value is None and not creating:
                value = {}
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise _validation_error("payload.auth_configs")
            config["auth_configs"] = {k.lower(): v for k, v in value.items()}
        if "connected_accounts" in body:
            value = body["connected_accounts"]
            if value is None and not creating:
                value = {}
            if not isinstance(value, dict) or not all(
                isinstance(v, list) and all(isinstance(x, str) for x in v) for v in value.values()
            ):
                raise _validation_error("payload.connected_accounts")
            config["connected_accounts"] = {k.lower(): list(v) for k, v in value.items()}
        if "tools" in body:
            value = body["tools"]
            if value is not None and not isinstance(value, dict):
                raise _validation_error("payload.tools")
            config["tools"] = (
                None if value is None else {k: _enable_to_enabled(v) for k, v in value.items()}
            )
        if "tags" in body:
            config["tags"] = _enable_to_enabled(body["tags"])
        if "preload" in body:
            value = body["preload"]
            if not isinstance(value, dict):
                raise _validation_error("payload.preload")
            config["preload"] = {"tools": value.get("tools", [])}
        for key in ("search", "execute", "instant"):
            if key in body and body[key] is not None:
                config[key] = body[key]
        for key in ("workbench", "multi_account", "proxy_execute"):
            if key in body:
                config[key] = body[key]

    def _parse_toolkits(self, value: Any) -> dict[str, list[str]]:
        invalid = _validation_error("payload.toolkits")
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
                    errors=[_unknown(s) for s in unknown],
                    suggested_fix="Use slugs returned by GET /api/v3.1/toolkits",
                )
            out[{"enable": "enabled", "disable": "disabled"}.get(key, key)] = normalized
        return out


def _unknown(slug: str) -> str:
    return f"Error in payload.toolkits: toolkit '{slug}' does not exist"


def _enable_to_enabled(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    names = {"enable": "enabled", "disable": "disabled"}
    return {names.get(k, k): v for k, v in value.items()}


def _parse_manage_connections(value: Any, current: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _validation_error("payload.manage_connections")
    out = dict(current)
    if "enable" in value:
        if not isinstance(value["enable"], bool):
            raise _validation_error("payload.manage_connections.enable", "Expected boolean")
        out["enabled"] = value["enable"]
    if "callback_url" in value:
        cb = value["callback_url"]
        if cb is not None and not isinstance(cb, str):
            raise _validation_error("payload.manage_connections.callback_url", "Expected string")
        out["callback_url"] = cb
    for key in ("enable_wait_for_connections", "enable_connection_removal"):
        if key in value:
            out[key] = value[key]
    return out


# Query helpers ---------------------------------------------------------------------------


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _csv(query: dict[str, list[str]], key: str) -> list[str] | None:
    values = query.get(key)
    if not values:
        return None
    return [s.strip() for v in values for s in v.split(",") if s.strip()]


def _bool(query: dict[str, list[str]], key: str) -> bool:
    value = _first(query, key)
    if value is None or value == "":
        return False
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise ApiError(400, "Validation error", errors=[f"Error in query.{key}: Expected boolean"])


def _encode_cursor(page: int, limit: int) -> str:
    raw = json.dumps({"page": page, "limit": limit}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        page, limit = int(data["page"]), int(data["limit"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise ApiError(400, "Invalid cursor", errors=["Error in query.cursor: Invalid"]) from exc
    if page < 1 or limit < 1:
        raise ApiError(400, "Invalid cursor", errors=["Error in query.cursor: Invalid"])
    return page, limit


def _parse_limit(raw: str, max_limit: int) -> int:
    try:
        number = float(raw)
    except ValueError as exc:
        raise ApiError(
            400, "Validation error", errors=["Error in query.limit: Expected number"]
        ) from exc
    if not math.isfinite(number) or number != int(number) or number < 1:
        raise ApiError(
            400, "Validation error", errors=["Error in query.limit: Expected positive integer"]
        )
    if number > max_limit:
        raise ApiError(
            400,
            "Validation error",
            errors=[f"Error in query.limit: Number must be less than or equal to {max_limit}"],
        )
    return int(number)


def _paginate(
    items: list[dict[str, Any]],
    query: dict[str, list[str]],
    *,
    default_limit: int,
    max_limit: int,
) -> dict[str, Any]:
    raw_limit = _first(query, "limit")
    cursor = _first(query, "cursor")
    page, limit = 1, default_limit
    if cursor:
        page, limit = _decode_cursor(cursor)
    if raw_limit not in (None, ""):
        limit = _parse_limit(raw_limit, max_limit)
    limit = min(limit, max_limit)
    total = len(items)
    start = (page - 1) * limit
    chunk = items[start : start + limit]
    has_more = start + limit < total
    return {
        "items": chunk,
        "next_cursor": _encode_cursor(page + 1, limit) if has_more else None,
        "total_items": total,
        "total_pages": math.ceil(total / limit),
        "current_page": page,
    }


# HTTP plumbing ---------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: Emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out and hang up are part of the test plan, not errors.
        pass


def _route(method: str, path: str) -> tuple[str, dict[str, str]]:
    for prefix in API_PREFIXES:
        if path.startswith(prefix + "/"):
            rest = path[len(prefix) :]
            known_path = False
            for route_method, pattern, name in _ROUTES:
                match = pattern.fullmatch(rest)
                if match:
                    known_path = True
                    if route_method == method:
                        return name, match.groupdict()
            return ("unknown", {"_method_not_allowed": "1"} if known_path else {})
    match = _MCP_RE.fullmatch(path)
    if match:
        return "mcp", match.groupdict()
    return "unknown", {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "ComposioEmulator/1.0"
    sys_version = ""
    # Answer at once: with Nagle on, each keep-alive reply waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the emulator writes its own access log, without header values

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        started = time.monotonic()
        emu = self.server.emulator
        request_id = f"req_{_token(16)}"
        split = urlsplit(self.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        raw_body = self._read_body()
        parsed_body, body_ok = _parse_json(raw_body)
        status = 0
        try:
            if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
                if not body_ok:
                    resp = _error_response(ApiError(400, "Invalid JSON body"), request_id)
                else:
                    resp = self._call(
                        lambda: emu.control(self.command, path, query, parsed_body), request_id
                    )
                status = self._send(resp, request_id)
                return
            status = self._handle_api(emu, path, query, raw_body, parsed_body, body_ok, request_id)
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True
            status = status or 499
        finally:
            elapsed_ms = (time.monotonic() - started) * 1000
            emu._log(f"{self.command} {path} {status or 'dropped'} {elapsed_ms:.1f}ms")

    def _handle_api(
        self,
        emu: Emulator,
        path: str,
        query: dict[str, list[str]],
        raw_body: bytes,
        parsed_body: Any,
        body_ok: bool,
        request_id: str,
    ) -> int:
        endpoint, params = _route(self.command, path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        presented = headers.get("x-api-key")
        authenticated = presented is not None and secrets.compare_digest(
            presented.encode(), emu.api_key.encode()
        )
        if presented is not None:
            headers["x-api-key"] = REDACTED
        emu._record(
            RecordedRequest(
                method=self.command,
                path=path,
                query=query,
                headers=headers,
                json=parsed_body if body_ok else None,
                endpoint=endpoint,
                at=time.monotonic(),
                authenticated=authenticated,
            )
        )
        emu._wait_holds(endpoint)
        emu._wait(emu.faults.delay_for(endpoint))
        fault = emu.faults.take(endpoint)
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            return 0
        if fault is not None and fault.kind == "enqueue":
            assert fault.status is not None
            err = ApiError(
                fault.status,
                f"Injected fault: HTTP {fault.status}",
                headers=(
                    {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                ),
            )
            return self._send(_error_response(err, request_id), request_id)
        if fault is not None and fault.kind == "malformed":
            ok = 201 if endpoint in ("session.create", "session.link") else 200
            junk = b"<html><body>502 upstream hiccup</body></html>"
            return self._send(_Response(ok, None, {}, raw=junk), request_id)

        def run() -> _Response:
            if not authenticated:
                raise ApiError(
                    401,
                    "Invalid API key" if presented else "API key is missing",
                    suggested_fix="Pass a valid project API key in the x-api-key header",
                )
            if not body_ok:
                raise ApiError(400, "Invalid JSON body", errors=["Error in payload: Invalid JSON"])
            if params.pop("_method_not_allowed", None):
                raise ApiError(405, f"Method {self.command} not allowed on {path}")
            needs_body = self.command in ("POST", "PATCH", "PUT")
            body = parsed_body if needs_body else None
            if needs_body and body is None:
                body = {}
            return emu.dispatch(endpoint, params, query, body)

        resp = self._call(run, request_id)
        return self._send(resp, request_id, truncate=fault is not None)

    def _call(self, fn: Callable[[], _Response], request_id: str) -> _Response:
        try:
            return fn()
        except ApiError as err:
            return _error_response(err, request_id)
        except Exception as exc:  # an emulator bug must still answer as Composio
            return _error_response(ApiError(500, f"Emulator error: {exc!r}"), request_id)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, resp: _Response, request_id: str, *, truncate: bool = False) -> int:
        if resp.raw is not None:
            payload = resp.raw
        else:
            payload = json.dumps(resp.body, separators=(",", ":")).encode()
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-request-id", request_id)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if truncate:
            # Headers promise the full body; half of it arrives, then the connection closes.
            self.wfile.write(payload[: max(1, len(payload) // 2)])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return resp.status
        self.wfile.write(payload)
        return resp.status


def _parse_json(raw: bytes) -> tuple[Any, bool]:
    if not raw.strip():
        return None, True
    try:
        return json.loads(raw), True
    except ValueError:
        return None, False


def _error_response(err: ApiError, request_id: str) -> _Response:
    return _Response(err.status, err.body(request_id), dict(err.headers))


__all__ = ["ENDPOINTS", "ApiError", "Emulator", "RecordedRequest"]
