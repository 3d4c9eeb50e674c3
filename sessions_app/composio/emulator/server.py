"""A loopback HTTP server speaking enough of Composio's v3.1 API for the real SDK.

Pure standard library on purpose: it runs inside tests and inside a management command, and
must never import Django.

`Emulator` is composed from one mixin a resource: sessions (`sessions.py`), toolkits
(`toolkits.py`), connected accounts (`accounts.py`) and the control API (`control_api.py`);
the HTTP plumbing is `http.py`. This module holds its state, lifecycle, request log and dispatch.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from . import catalog as cat
from .accounts import AccountsMixin
from .control_api import ControlApiMixin
from .errors import ApiError
from .execution import ExecutionMixin
from .faults import Faults
from .http import ENDPOINTS, Response, _Handler, _Server
from .logs import LogsMixin
from .sessions import SessionsMixin
from .store import EmulatorStore, StateFileError
from .toolkits import ToolkitsMixin

HOLD_TIMEOUT_SECONDS = 60.0


def _contract() -> ModuleType:
    """`contract.py`, imported on first use: it loads composio_client's types, which takes
    seconds, so importing the emulator stays cheap and `start()` pays once, before listening."""
    from . import contract

    return contract


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


class Emulator(
    SessionsMixin, ToolkitsMixin, AccountsMixin, ExecutionMixin, LogsMixin, ControlApiMixin
):
    """Composio v3.1 emulator on a loopback port. See docs/emulator.md."""

    def __init__(
        self,
        api_key: str = "emu-test-key",
        host: str = "127.0.0.1",
        port: int = 0,
        catalog: list[dict[str, Any]] | None = None,
        access_log: Callable[[str], None] | None = None,
        state_path: str | Path | None = None,
    ) -> None:
        """`state_path` keeps sessions, accounts and links in that SQLite file and reloads them
        from it (see `store.py`); without it the emulator forgets everything when it stops.
        A file it cannot use raises `StateFileError` here."""
        self.api_key = api_key
        self.host = host
        self.port = port
        self.access_log = access_log
        self.faults = Faults()
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._sessions: dict[str, dict[str, Any]] = {}
        self._links: dict[str, dict[str, Any]] = {}
        self._accounts: dict[str, dict[str, Any]] = {}
        self._auth_configs: dict[str, dict[str, Any]] = {}
        self._logs: dict[str, dict[str, Any]] = {}
        self._config_history: dict[str, dict[str, Any]] = {}
        self._catalog: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.set_catalog(cat.load_catalog() if catalog is None else catalog)
        self.state_path = None if state_path is None else Path(state_path)
        self._store: EmulatorStore | None = None
        if self.state_path is not None:
            self._open_store()

    def _open_store(self) -> None:
        """Open the state file and load every kind of record it keeps."""
        assert self.state_path is not None
        store = EmulatorStore(self.state_path)
        try:
            loaded = {kind: store.load(kind) for kind in self.PERSISTED_KINDS}
        except StateFileError:
            store.close()
            raise
        with self._lock:
            for kind, attribute in self.PERSISTED_KINDS.items():
                setattr(self, attribute, loaded[kind])
            self._store = store
            try:
                self._migrate_session_connections()
            except Exception as exc:
                self._store = None
                store.close()
                raise StateFileError(self.state_path, f"cannot be migrated ({exc})") from exc

    # Lifecycle ---------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        _contract()  # imports composio_client's types (seconds, cold) before the first request
        if self.state_path is not None and self._store is None:
            self._open_store()  # started again after stop(): the file is the truth
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
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # State for tests ---------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every persisted kind (sessions, links, config history, auth configs, accounts,
        execution logs), the request log and faults (in the state file too); keep the catalog."""
        with self._lock:
            if self._store is not None:
                self._store.clear()
            for attribute in self.PERSISTED_KINDS.values():
                getattr(self, attribute).clear()
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

    # Used by the request handler ---------------------------------------------------------

    def _record(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        json: Any,
        endpoint: str,
        authenticated: bool,
    ) -> None:
        """Append one API request to the log, stamped with the monotonic clock."""
        at = time.monotonic()
        req = RecordedRequest(method, path, query, headers, json, endpoint, at, authenticated)
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

    # API dispatch ------------------------------------------------------------------------

    def dispatch(
        self, endpoint: str, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Response:
        """Check the request against `contract.CONTRACTS` (a 400 when it breaks it), then call
        the `_h_<endpoint>` handler a mixin defines for the routed endpoint name."""
        _contract().validate(endpoint, query, body)
        handler = getattr(self, "_h_" + endpoint.replace(".", "_"))
        return handler(params, query, body)

    def _h_unknown(self, params: dict[str, str], query: Any, body: Any) -> Response:
        raise ApiError(404, "Not found", errors=["The requested endpoint does not exist"])

    def _h_mcp(self, params: dict[str, str], query: Any, body: Any) -> Response:
        with self._lock:
            self._session_or_404(params["session_id"])
        raise ApiError(501, "The Composio emulator does not implement the MCP endpoint")


__all__ = ["ENDPOINTS", "ApiError", "Emulator", "RecordedRequest", "StateFileError"]
