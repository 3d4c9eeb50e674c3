"""`/healthz` for load balancers: the database, and Composio when a real key is configured."""

from __future__ import annotations

import threading
import time

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sessions_app.composio import seam as composio_seam

# A probe every few seconds must not turn into a stream of calls to Composio.
_COMPOSIO_TTL = 30.0
_composio_cache: dict[str, object] = {}
_cache_lock = threading.Lock()


def _composio_status() -> str:
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


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unreachable"
    checks["composio"] = _composio_status()
    healthy = checks["database"] == "ok" and checks["composio"] in ("ok", "emulated")
    return JsonResponse(
        {"status": "ok" if healthy else "fail", **checks}, status=200 if healthy else 503
    )
