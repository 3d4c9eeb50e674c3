"""Request ids: one per request, echoed in a header, carried by log records and audit events."""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

access_log = logging.getLogger("console.request")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# A proxy-supplied id is kept only if it is short and plain, so it cannot inject into logs.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def current_request_id() -> str:
    return _request_id.get()


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = _request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            # One structured line per request; the path only (query strings can carry search
            # terms), never bodies.
            user = getattr(request, "user", None)
            access_log.info(
                "request method=%s path=%s status=%s duration_ms=%.1f user=%s htmx=%s",
                request.method,
                request.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
                user.pk if user is not None and user.is_authenticated else "-",
                "HTTP_HX_REQUEST" in request.META,
            )
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True
