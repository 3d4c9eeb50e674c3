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
_ACCOUNT_STATUS_RE = re.compile(r"/accounts/(?P<account_id>[^/]+)/status")
# (method, route below CONTROL_PREFIX) -> ControlApiMixin method answering it
_CONTROL_ROUTES = {
    ("GET", "/health"): "_control_health",
    ("GET", "/requests"): "_control_requests",
    ("POST", "/faults"): "_control_add_fault",
    ("DELETE", "/faults"): "_control_clear_faults",
    ("POST", "/reset"): "_control_reset",
    ("POST", "/catalog"): "_control_catalog",
    ("POST", "/connections"): "_control_connection",
    ("GET", "/accounts"): "_control_accounts",
    ("POST", "/accounts"): "_control_create_account",
    ("POST", "/accounts/expire"): "_control_expire_accounts",
}


class ControlApiMixin(EmulatorState):
    """Answers `/_emulator/...`: health, the request log, faults, reset, catalog, connections."""

    if TYPE_CHECKING:  # provided by the other parts of Emulator

        @property
        def requests(self) -> list[RecordedRequest]: ...
        def reset(self) -> None: ...
        def set_catalog(self, toolkits: list[dict[str, Any]]) -> None: ...
        def set_connection(
            self,
            session_id: str,
            toolkit_slug: str,
            status: str | None,
            status_reason: str | None = None,
        ) -> str | None: ...
        def create_account(
            self,
            user_id: str,
            toolkit_slug: str,
            status: str = "ACTIVE",
            *,
            auth_config_id: str | None = None,
            status_reason: str | None = None,
        ) -> str: ...
        def set_account_status(
            self, account_id: str, status: str, status_reason: str | None = None
        ) -> dict[str, Any]: ...
        def expire_accounts(self, **filters: Any) -> list[str]: ...
        def _connect_page(self, link_token: str, query: Query) -> Response: ...

    def control(self, method: str, path: str, query: Query, body: Any) -> Response:
        """Answer one control API request; unknown routes are a 404."""
        route = path[len(CONTROL_PREFIX) :].rstrip("/") or "/"
        handler = _CONTROL_ROUTES.get((method, route))
        if handler is not None:
            return getattr(self, handler)(query, body)
        match = _CONNECT_RE.fullmatch(route)
        if method == "GET" and match:
            return self._connect_page(match["token"], query)
        match = _ACCOUNT_STATUS_RE.fullmatch(route)
        if method == "POST" and match:
            return self._control_account_status(match["account_id"], body)
        raise ApiError(404, f"Unknown emulator control route {method} {path}")

    def _control_health(self, query: Query, body: Any) -> Response:
        with self._lock:
            data = {
                "status": "ok",
                "base_url": self.base_url,
                "sessions": len(self._sessions),
                "requests": len(self._requests),
                "toolkits": len(self._catalog),
                "accounts": len(self._accounts),
                "auth_configs": len(self._auth_configs),
                "execution_logs": len(self._logs),
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
            account_id = self.set_connection(
                body["session_id"], body["toolkit"], body.get("status"), body.get("status_reason")
            )
        except KeyError as exc:
            raise ApiError(404, f"Unknown session or missing field: {exc}") from exc
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        return Response(200, {"ok": True, "account_id": account_id}, {})

    def _control_accounts(self, query: Query, body: Any) -> Response:
        """Every stored account (`?user_id=` narrows), as the emulator keeps it."""
        user_id = query_first(query, "user_id")
        with self._lock:
            accounts = [
                dict(a)
                for a in self._accounts.values()
                if user_id is None or a["user_id"] == user_id
            ]
        return Response(200, {"accounts": accounts}, {})

    def _control_create_account(self, query: Query, body: Any) -> Response:
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in ("user_id", "toolkit")
        ):
            raise ApiError(400, 'Expected {"user_id", "toolkit", "status"?, "status_reason"?}')
        try:
            account_id = self.create_account(
                body["user_id"],
                body["toolkit"],
                body.get("status") or "ACTIVE",
                auth_config_id=body.get("auth_config_id"),
                status_reason=body.get("status_reason"),
            )
        except KeyError as exc:
            raise ApiError(404, str(exc)) from exc
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        with self._lock:
            return Response(201, {"account": dict(self._accounts[account_id])}, {})

    def _control_account_status(self, account_id: str, body: Any) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise ApiError(400, 'Expected {"status", "status_reason"?}')
        try:
            account = self.set_account_status(account_id, body["status"], body.get("status_reason"))
        except KeyError as exc:
            raise ApiError(404, str(exc)) from exc
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        return Response(200, {"account": account}, {})

    def _control_expire_accounts(self, query: Query, body: Any) -> Response:
        body = body if isinstance(body, dict) else {}
        filters = {k: body[k] for k in ("user_id", "account_ids", "status_reason") if k in body}
        if "toolkit" in body:
            filters["toolkit_slug"] = body["toolkit"]
        try:
            expired = self.expire_accounts(**filters)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from exc
        return Response(200, {"expired": expired}, {})
