"""`/healthz` for load balancers: the database, and Composio when a real key is configured; and,
for whoever watches it, how many active sessions Composio no longer knows (`stale_sessions`, a
count only: it does not make the console unhealthy)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sessions_app.tool_router import drift
from sessions_app.tool_router.health import composio_status


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    details: dict[str, int] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
        details["stale_sessions"] = drift.stale_count()
    except Exception:
        checks["database"] = "unreachable"
    checks["composio"] = composio_status()
    healthy = checks["database"] == "ok" and checks["composio"] in ("ok", "emulated")
    return JsonResponse(
        {"status": "ok" if healthy else "fail", **checks, **details},
        status=200 if healthy else 503,
    )
