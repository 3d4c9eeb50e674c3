"""Client for the emulator's `/_emulator/` control API, for use from another process."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode


class EmulatorControlError(RuntimeError):
    """The control API answered with an error status."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"emulator control API answered {status}: {body!r}")
        self.status = status
        self.body = body


class EmulatorControl:
    """Drive a running emulator over HTTP: health, request counts, faults, reset."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, route: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}/_emulator{route}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                payload: Any = json.loads(raw)
            except ValueError:
                payload = raw.decode(errors="replace")
            raise EmulatorControlError(exc.code, payload) from exc

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def requests(self, endpoint: str | None = None) -> dict[str, Any]:
        """`{"total", "counts": {endpoint: n}, "requests": [summaries]}`; no header values."""
        suffix = f"?{urlencode({'endpoint': endpoint})}" if endpoint else ""
        return self._call("GET", f"/requests{suffix}")

    def count(self, endpoint: str) -> int:
        return int(self.requests(endpoint)["total"])

    def add_fault(self, kind: str, **options: Any) -> dict[str, Any]:
        """Add a fault of `kind` with the options `faults.Faults` takes for it (`endpoint`,
        `times`, ...); the emulator's own defaults fill in the options left out."""
        return self._call("POST", "/faults", {"kind": kind, **options})

    def latency(self, seconds: float, **options: Any) -> dict[str, Any]:
        return self.add_fault("latency", seconds=seconds, **options)

    def enqueue(self, status: int, **options: Any) -> dict[str, Any]:
        return self.add_fault("enqueue", status=status, **options)

    def malformed(self, **options: Any) -> dict[str, Any]:
        return self.add_fault("malformed", **options)

    def truncated(self, **options: Any) -> dict[str, Any]:
        return self.add_fault("truncated", **options)

    def drop(self, **options: Any) -> dict[str, Any]:
        return self.add_fault("drop", **options)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/faults")

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "/reset")

    def set_catalog(self, toolkits: list[dict[str, Any]]) -> dict[str, Any]:
        return self._call("POST", "/catalog", {"toolkits": toolkits})

    def set_connection(
        self, session_id: str, toolkit: str, status: str | None, status_reason: str | None = None
    ) -> dict[str, Any]:
        """`{"ok", "account_id"}`: the account the session now uses for `toolkit` (None when
        `status` is None and its accounts were removed)."""
        body = {
            "session_id": session_id,
            "toolkit": toolkit,
            "status": status,
            "status_reason": status_reason,
        }
        return self._call("POST", "/connections", body)

    def accounts(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """The stored accounts (of one user), as the emulator keeps them."""
        suffix = f"?{urlencode({'user_id': user_id})}" if user_id else ""
        return self._call("GET", f"/accounts{suffix}")["accounts"]

    def create_account(
        self,
        user_id: str,
        toolkit: str,
        status: str = "ACTIVE",
        *,
        status_reason: str | None = None,
        auth_config_id: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "user_id": user_id,
            "toolkit": toolkit,
            "status": status,
            "status_reason": status_reason,
            "auth_config_id": auth_config_id,
        }
        return self._call("POST", "/accounts", body)["account"]

    def set_account_status(
        self, account_id: str, status: str, status_reason: str | None = None
    ) -> dict[str, Any]:
        body = {"status": status, "status_reason": status_reason}
        return self._call("POST", f"/accounts/{account_id}/status", body)["account"]

    def expire_accounts(
        self,
        *,
        user_id: str | None = None,
        account_ids: list[str] | None = None,
        toolkit: str | None = None,
        status_reason: str | None = None,
    ) -> list[str]:
        """Expire the ACTIVE/INITIATED accounts matching every filter given; their ids."""
        given = {
            "user_id": user_id,
            "account_ids": account_ids,
            "toolkit": toolkit,
            "status_reason": status_reason,
        }
        body = {k: v for k, v in given.items() if v is not None}
        return self._call("POST", "/accounts/expire", body)["expired"]
