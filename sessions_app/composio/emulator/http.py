"""HTTP plumbing: the threaded loopback server, its request handler and the routing table.

The handler parses, authenticates, records and routes each request, applies injected faults,
and hands the rest to `Emulator.dispatch` (API) or `Emulator.control` (`/_emulator/`).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .errors import ApiError
from .faults import Fault
from .ids import token

if TYPE_CHECKING:
    from .server import Emulator

API_PREFIXES = ("/api/v3.1", "/api/v3")
CONTROL_PREFIX = "/_emulator"
REDACTED = "<redacted>"

_SESSION_RE = r"/tool_router/session/(?P<session_id>[^/]+)"
_ACCOUNT_RE = r"/connected_accounts/(?P<account_id>[^/]+)"
# (method, path regex relative to the API prefix, endpoint name). First match wins: a fixed
# path (`/toolkits/categories`) comes before the pattern that would take it as a parameter.
# Each endpoint's request contract is in contract.py's CONTRACTS, under the same name.
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/tool_router/session/?"), "session.create"),
    ("GET", re.compile(_SESSION_RE + "/toolkits/?"), "session.toolkits"),
    ("GET", re.compile(_SESSION_RE + "/config_history/?"), "session.config_history"),
    ("POST", re.compile(_SESSION_RE + "/link/?"), "session.link"),
    ("GET", re.compile(_SESSION_RE + "/tools/?"), "session.tools"),
    ("POST", re.compile(_SESSION_RE + "/search/?"), "session.search"),
    ("POST", re.compile(_SESSION_RE + "/execute/?"), "session.execute"),
    ("POST", re.compile(_SESSION_RE + "/execute_meta/?"), "session.execute_meta"),
    ("GET", re.compile(_SESSION_RE + "/?"), "session.get"),
    ("PATCH", re.compile(_SESSION_RE + "/?"), "session.update"),
    ("DELETE", re.compile(_SESSION_RE + "/?"), "session.delete"),
    ("GET", re.compile(r"/toolkits/?"), "toolkits.list"),
    ("GET", re.compile(r"/toolkits/categories/?"), "toolkits.categories"),
    ("POST", re.compile(r"/toolkits/multi/?"), "toolkits.multi"),
    ("GET", re.compile(r"/toolkits/(?P<slug>[^/]+)/?"), "toolkits.get"),
    ("GET", re.compile(r"/connected_accounts/?"), "connected_accounts.list"),
    ("GET", re.compile(_ACCOUNT_RE + "/?"), "connected_accounts.get"),
    ("DELETE", re.compile(_ACCOUNT_RE + "/?"), "connected_accounts.delete"),
    ("PATCH", re.compile(_ACCOUNT_RE + "/status/?"), "connected_accounts.update_status"),
    ("POST", re.compile(_ACCOUNT_RE + "/refresh/?"), "connected_accounts.refresh"),
    ("GET", re.compile(r"/auth_configs/?"), "auth_configs.list"),
    ("POST", re.compile(r"/logs/tool_execution/?"), "logs.tool_execution"),
    ("GET", re.compile(r"/logs/tool_execution/(?P<log_id>[^/]+)/?"), "logs.tool_execution_get"),
]
_MCP_RE = re.compile(r"/tool_router/(?P<session_id>[^/]+)/mcp/?")

ENDPOINTS = tuple(name for _, _, name in _ROUTES) + ("mcp", "unknown")


@dataclass
class Response:
    """What a handler answers: a JSON `body`, or `raw` bytes sent as they are."""

    status: int
    body: Any
    headers: dict[str, str]
    raw: bytes | None = None
    content_type: str = "application/json"


def error_response(err: ApiError, request_id: str) -> Response:
    """`err` as Composio's error envelope, with the headers it carries."""
    return Response(err.status, err.body(request_id), dict(err.headers))


def _route(method: str, path: str) -> tuple[str, dict[str, str]]:
    """(endpoint name, path parameters); a known path with another method is flagged for 405."""
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


def _parse_json(raw: bytes) -> tuple[Any, bool]:
    """(parsed body, whether it parsed); an empty body parses as None."""
    if not raw.strip():
        return None, True
    try:
        return json.loads(raw), True
    except ValueError:
        return None, False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: Emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out and hang up are part of the test plan, not errors.
        pass


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
        request_id = f"req_{token(16)}"
        split = urlsplit(self.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        parsed_body, body_ok = _parse_json(self._read_body())
        status = 0
        try:
            if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
                # The control API is never recorded, authenticated or faulted.
                if not body_ok:
                    resp = error_response(ApiError(400, "Invalid JSON body"), request_id)
                else:
                    resp = self._call(
                        lambda: emu.control(self.command, path, query, parsed_body), request_id
                    )
                status = self._send(resp, request_id)
                return
            status = self._handle_api(emu, path, query, parsed_body, body_ok, request_id)
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
        parsed_body: Any,
        body_ok: bool,
        request_id: str,
    ) -> int:
        """Record, hold, delay and fault the request, then answer it; returns the status sent."""
        endpoint, params = _route(self.command, path)
        presented, authenticated = self._record_request(
            emu, endpoint, path, query, parsed_body if body_ok else None
        )
        emu._wait_holds(endpoint)
        emu._wait(emu.faults.delay_for(endpoint))
        fault = emu.faults.take(endpoint)
        if fault is not None and fault.kind in ("drop", "enqueue", "malformed"):
            return self._send_fault(fault, endpoint, request_id)

        def run() -> Response:
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
        # Any other fault left here is `truncated`: the answer is cut in half.
        return self._send(resp, request_id, truncate=fault is not None)

    def _record_request(
        self, emu: Emulator, endpoint: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[str | None, bool]:
        """Record the request with its key redacted; returns (presented key, authenticated)."""
        headers = {k.lower(): v for k, v in self.headers.items()}
        presented = headers.get("x-api-key")
        authenticated = presented is not None and secrets.compare_digest(
            presented.encode(), emu.api_key.encode()
        )
        if presented is not None:
            headers["x-api-key"] = REDACTED
        emu._record(self.command, path, query, headers, body, endpoint, authenticated)
        return presented, authenticated

    def _send_fault(self, fault: Fault, endpoint: str, request_id: str) -> int:
        """Answer with an injected `drop`, `enqueue` or `malformed` fault instead of the API."""
        if fault.kind == "drop":
            self.close_connection = True
            return 0
        if fault.kind == "enqueue":
            assert fault.status is not None
            err = ApiError(
                fault.status,
                f"Injected fault: HTTP {fault.status}",
                headers=(
                    {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                ),
            )
            return self._send(error_response(err, request_id), request_id)
        ok = 201 if endpoint in ("session.create", "session.link") else 200
        junk = b"<html><body>502 upstream hiccup</body></html>"
        return self._send(Response(ok, None, {}, raw=junk), request_id)

    def _call(self, fn: Callable[[], Response], request_id: str) -> Response:
        try:
            return fn()
        except ApiError as err:
            return error_response(err, request_id)
        except Exception as exc:  # an emulator bug must still answer as Composio
            return error_response(ApiError(500, f"Emulator error: {exc!r}"), request_id)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, resp: Response, request_id: str, *, truncate: bool = False) -> int:
        """Write `resp`; with `truncate`, half the body then a closed connection."""
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
