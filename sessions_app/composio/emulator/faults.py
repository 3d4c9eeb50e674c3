"""Fault injection: latency, queued error statuses, broken bodies, dropped connections, holds."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

QUEUED_KINDS = ("enqueue", "malformed", "truncated", "drop")
ALL_KINDS = ("latency", *QUEUED_KINDS)


@dataclass
class Fault:
    """One queued fault; `remaining` counts down as matching requests consume it."""

    kind: str
    endpoint: str | None
    remaining: int
    status: int | None = None
    retry_after: float | int | str | None = None

    def matches(self, endpoint: str) -> bool:
        return self.endpoint is None or self.endpoint == endpoint

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "endpoint": self.endpoint,
            "remaining": self.remaining,
            "status": self.status,
            "retry_after": self.retry_after,
        }


@dataclass
class _Latency:
    seconds: float
    endpoint: str | None


@dataclass
class _Hold:
    endpoint: str
    event: threading.Event


@dataclass
class Faults:
    """Thread-safe fault registry shared by the emulator's request threads.

    Queued faults (`enqueue`, `malformed`, `truncated`, `drop`) are consumed first in, first
    out by the next matching requests. Latencies and holds persist until `clear()`.
    `endpoint=None` matches every Composio API request (never the `/_emulator/` control API).
    """

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _queue: list[Fault] = field(default_factory=list)
    _latencies: list[_Latency] = field(default_factory=list)
    _holds: list[_Hold] = field(default_factory=list)

    def latency(self, seconds: float, endpoint: str | None = None) -> None:
        if seconds < 0:
            raise ValueError("latency seconds must be >= 0")
        with self._lock:
            self._latencies.append(_Latency(float(seconds), endpoint))

    def enqueue(
        self,
        status: int,
        endpoint: str | None = None,
        retry_after: float | int | str | None = None,
        times: int = 1,
    ) -> None:
        if not 400 <= int(status) <= 599:
            raise ValueError("enqueue status must be an HTTP error status (400-599)")
        if int(status) == 429 and retry_after is None:
            retry_after = 1
        self._push(Fault("enqueue", endpoint, times, status=int(status), retry_after=retry_after))

    def malformed(self, endpoint: str | None = None, times: int = 1) -> None:
        self._push(Fault("malformed", endpoint, times))

    def truncated(self, endpoint: str | None = None, times: int = 1) -> None:
        self._push(Fault("truncated", endpoint, times))

    def drop(self, endpoint: str | None = None, times: int = 1) -> None:
        self._push(Fault("drop", endpoint, times))

    def hold(self, endpoint: str, event: threading.Event) -> None:
        """Block requests for `endpoint` until `event` is set (or the emulator stops)."""
        with self._lock:
            self._holds.append(_Hold(endpoint, event))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._latencies.clear()
            self._holds.clear()

    def add(self, kind: str, **kwargs: Any) -> None:
        """Dispatch by name; used by the control API (`POST /_emulator/faults`)."""
        if kind not in ALL_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {ALL_KINDS}")
        getattr(self, kind)(**kwargs)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "queued": [f.summary() for f in self._queue],
                "latency": [
                    {"seconds": x.seconds, "endpoint": x.endpoint} for x in self._latencies
                ],
                "holds": [h.endpoint for h in self._holds],
            }

    # Used by the server.

    def _push(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._queue.append(fault)

    def delay_for(self, endpoint: str) -> float:
        with self._lock:
            return sum(x.seconds for x in self._latencies if x.endpoint in (None, endpoint))

    def holds_for(self, endpoint: str) -> list[threading.Event]:
        with self._lock:
            return [h.event for h in self._holds if h.endpoint == endpoint]

    def take(self, endpoint: str) -> Fault | None:
        """Consume one use of the first queued fault matching `endpoint`."""
        with self._lock:
            for fault in self._queue:
                if fault.matches(endpoint):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._queue.remove(fault)
                    return Fault(fault.kind, fault.endpoint, 1, fault.status, fault.retry_after)
        return None
