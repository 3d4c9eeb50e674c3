"""Whether Composio answers: for `/healthz` and for saying where the console points."""

from __future__ import annotations

import logging
import threading
import time

from sessions_app.composio import seam as composio_seam

logger = logging.getLogger(__name__)

WARM_UP_THREAD = "composio-warm-up"
# The last warm-up started in this process (None: never, as in manage.py commands).
warm_up_thread: threading.Thread | None = None

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


_warmed = False  # this process has imported the SDK (the client is built again on demand)


def warm_up_in_background() -> threading.Thread:
    """Import the Composio SDK and build its client in a daemon thread, now.

    Called by the web application modules (console/wsgi.py, console/asgi.py) once the app is
    loaded, so each web worker pays the SDK's seconds-long import right after it starts instead of
    during its first "Check connections". `manage.py` commands never load those modules, so they
    stay free of the import; so does start-up itself, which does not wait for the thread.
    """
    global warm_up_thread
    thread = threading.Thread(target=warm_up, name=WARM_UP_THREAD, daemon=True)
    thread.start()
    warm_up_thread = thread
    return thread


def warm_up() -> None:
    """Import the Composio SDK and build its client in this thread, now (seconds, once per
    process). A bulk runner calls it before it pays for its first batch: the import would
    otherwise hold every thread at its first call while the batch's turns went by, and they
    would then all send at once. A failure is logged and left to the first call to report;
    once done, a call does nothing (and logs nothing)."""
    global _warmed
    if _warmed:
        return
    started = time.monotonic()
    try:
        composio_seam.warm_up()
    except Exception:  # a warm-up that fails leaves the first request to try (and report) it
        logger.exception("composio warm-up failed")
        return
    _warmed = True
    logger.info("composio warm-up done in %.0f ms", 1000 * (time.monotonic() - started))
