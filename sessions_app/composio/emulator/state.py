"""The state the emulator's resource mixins share, and the look-ups more than one of them needs."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .errors import session_not_found
from .faults import Faults
from .store import Change, EmulatorStore

if TYPE_CHECKING:
    from .server import RecordedRequest


class EmulatorState:
    """Declares what `Emulator.__init__` sets up; the mixins read it under `_lock`."""

    api_key: str
    host: str
    port: int
    faults: Faults
    _lock: threading.RLock
    _stopping: threading.Event
    _requests: list[RecordedRequest]
    _sessions: dict[str, dict[str, Any]]
    _links: dict[str, dict[str, Any]]
    _accounts: dict[str, dict[str, Any]]
    _auth_configs: dict[str, dict[str, Any]]
    _logs: dict[str, dict[str, Any]]
    _config_history: dict[str, dict[str, Any]]
    _seq: int = 0
    _catalog: list[dict[str, Any]]
    _store: EmulatorStore | None

    # What a state file keeps: record kind -> the attribute holding those records by id.
    # A resource that holds state of its own adds itself here and calls `_persist`.
    PERSISTED_KINDS = {
        "session": "_sessions",
        "link": "_links",
        "auth_config": "_auth_configs",
        "account": "_accounts",
        "execution_log": "_logs",
        "config_history": "_config_history",
    }

    if TYPE_CHECKING:  # provided by AccountsMixin (accounts.py)

        def _session_connection(
            self, session: dict[str, Any], slug: str
        ) -> dict[str, Any] | None: ...

    @property
    def base_url(self) -> str:
        """Where the emulator listens, e.g. `http://127.0.0.1:9900`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _persist(self, *changes: Change) -> None:
        """Write `changes` to the state file in one transaction (a no-op in memory).

        Call under `_lock` and before changing memory: a failed write leaves both unchanged.
        """
        if self._store is not None:
            self._store.apply(changes)

    def _toolkit(self, slug: str) -> dict[str, Any] | None:
        """The catalog entry for a lowercase `slug`, or None. Call under `_lock`."""
        for tk in self._catalog:
            if tk["slug"] == slug:
                return tk
        return None

    def _session_or_404(self, session_id: str) -> dict[str, Any]:
        """The stored session, or Composio's session-not-found error. Call under `_lock`."""
        session = self._sessions.get(session_id)
        if session is None:
            raise session_not_found(session_id)
        return session

    def _session_toolkits(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """The catalog entries a session's toolkit config enables. Call under `_lock`."""
        toolkits = config.get("toolkits")
        if toolkits and "enabled" in toolkits:
            return [tk for s in toolkits["enabled"] if (tk := self._toolkit(s)) is not None]
        disabled = set(toolkits.get("disabled", [])) if toolkits else set()
        return [tk for tk in self._catalog if tk["slug"] not in disabled]
