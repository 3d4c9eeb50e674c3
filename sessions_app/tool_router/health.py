"""Whether Composio answers: for `/healthz` and for saying where the console points."""

from __future__ import annotations

import threading
import time

from sessions_app.composio import seam as composio_seam

# A probe every few seconds must not turn into a stream of calls to Composio.
_COMPOSIO_TTL = 30.0
_composio_cache: dict[str, object] = {}
_cache_lock = threading.Lock()


def composio_is_emulated() -> bool:
    """True when no API key is set and the console talks to the bundled emulator."""
    return composio_seam.is_emulated()


def composio_status() -> str:
    """ "emulated", "ok" or "unreachable"; a real Composio is asked at most every 30 s."""
    if composio_seam.is_emulated():
        return "emulated"
    with _cache_lock:
        if time.monotonic() - float(_composio_cache.get("at", -1e9)) < _COMPOSIO_TTL:
            return str(_composio_cache["status"])
    try:
        composio_seam.ping()
        status = "ok"
    except composio_seam.ComposioError:
        status = "unreachable"
    with _cache_lock:
        _composio_cache.update(at=time.monotonic(), status=status)
    return status
