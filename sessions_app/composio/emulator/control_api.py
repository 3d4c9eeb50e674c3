"""The server side of the `/_emulator/` control API (the client is `control.EmulatorControl`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .http import CONTROL_PREFIX, Response
from .paging import Query, query_first
from .state import EmulatorState

if TYPE_CHECKING:
    from .server import RecordedRequest

_CONNECT_RE = re.compile(r"/connect/(?P<token>[^/]+)")
# (method, route below CONTROL_PREFIX) -> ControlApiMixin method answering it
_CONTROL_ROUTES = {
    ("GET", "/health"): "_control_health",
    ("GET", "/requests"): "_control_requests",
    ("POST", "/faults"): "_control_add_fault",
    ("DELETE", "/faults"): "_control_clear_faults",
    ("POST", "/reset"): "_control_reset",
    ("POST", "/catalog"): "_control_catalog",
    ("POST", "/connections"): "_control_connection",
}


class ControlApiMixin(EmulatorState):
    """Answers `/_emulator/...`: health, the request log, faults, reset, catalog, connections."""

    if TYPE_CHECKING:  # provided by the other parts of Emulator

        @property
        def requests(self) -> list[RecordedRequest]: ...
        def reset(self) -> None: ...
        def set_catalog(self, toolkits: list[dict[str, Any]]) -> None: ...
        def set_connection(
            self, session_id: str, toolkit_slug: str, status: str | None
        ) -> None: ...
        def _complete_link(self, link_token: str, status: str) -> Response: ...

    def control(self, method: str, path: str, query: Query, body: Any) -> Response:
        """Answer one control API request; unknown routes are a 404."""
        route = path[len(CONTROL_PREFIX) :].rstrip("/") or "/"
        handler = _CONTROL_ROUTES.get((method, route))
        if handler is not None:
            return getattr(self, handler)(query, body)
        match = _CONNECT_RE.fullmatch(route)
        if method == "GET" and match:
            return self._complete_link(match["token"], query_first(query, "status") or "ACTIVE")
        raise ApiError(404, f"Unknown emulator control route {method} {path}")

    def _control_health(self, query: Query, body: Any) -> Response:
        with self._lock:
            data = {
                "status": "ok",
                "base_url": self.base_url,
                "sessions": len(self._sessions),
                "requests": len(self._requests),
                "toolkits": len(self._catalog),
            }
        data["faults"] = self.faults.snapshot()
        return Response(200, data, {})

    def _control_requests(self, query: Query, body: Any) -> Response:
        endpoint = query_first(query, "endpoint")
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
        return Response(200, data, {})

    def _control_add_fault(self, query: Query, body: Any) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
            raise ApiError(400, 'Expected {"kind": ..., ...}')
        kwargs = {k: v for k, v in body.items() if k != "kind"}
        try:
            self.faults.add(body["kind"], **kwargs)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from exc
        return Response(201, {"ok": True, "faults": self.faults.snapshot()}, {})

    def _control_clear_faults(self, query: Query, body: Any) -> Response:
        self.faults.clear()
        return Response(200, {"ok": True}, {})

    def _control_reset(self, query: Query, body: Any) -> Response:
        self.reset()
        return Response(200, {"ok": True}, {})

    def _control_catalog(self, query: Query, body: Any) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("toolkits"), list):
            raise ApiError(400, 'Expected {"toolkits": [...]}')
        self.set_catalog(body["toolkits"])
        return Response(200, {"ok": True, "toolkits": len(body["toolkits"])}, {})

    def _control_connection(self, query: Query, body: Any) -> Response:
        if not isinstance(body, dict):
            raise ApiError(400, 'Expected {"session_id", "toolkit", "status"}')
        try:
            self.set_connection(body["session_id"], body["toolkit"], body.get("status"))
        except KeyError as exc:
            raise ApiError(404, f"Unknown session or missing field: {exc}") from exc
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        return Response(200, {"ok": True}, {})
