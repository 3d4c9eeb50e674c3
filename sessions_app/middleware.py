"""The console's middleware and django-axes' callables.

Forwarding headers believed from trusted proxies only; a Permissions-Policy on every response.
Request ids: one per request, echoed in a header, carried by log records and audit events (kept
in `sessions_app.request_context`); staff session time-outs; malformed admin input refused.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict

from sessions_app.request_context import (
    bound_request_id,
    client_ip,
    current_request_id,
    from_trusted_proxy,
)

access_log = logging.getLogger("console.request")
# A proxy-supplied id is kept only if it is short and plain, so it cannot inject into logs.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# What only a reverse proxy may say about a request: the client's address, the scheme it used
# (Django's SECURE_PROXY_SSL_HEADER reads X-Forwarded-Proto), the host and port, the request id.
_PROXY_HEADERS = (
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_SSL",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_REQUEST_ID",
)
# The browser features the console never uses, denied to it and to anything it might embed.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


class UntrustedProxyHeadersMiddleware:
    """First in line: a request whose peer is not in settings.TRUSTED_PROXIES loses the headers
    only a proxy may set, so nothing after it (the HTTPS check, the client address, the request
    id) reads a client's own X-Forwarded-Proto, X-Forwarded-For or X-Request-ID."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not from_trusted_proxy(request):
            for name in _PROXY_HEADERS:
                request.META.pop(name, None)
        return self.get_response(request)


class PermissionsPolicyMiddleware:
    """Every response says the page may not use the camera, microphone, location, payments or
    USB (PERMISSIONS_POLICY)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # A client's own id would let it write what audit events and log lines are filed under.
        incoming = request.headers.get("X-Request-ID", "") if from_trusted_proxy(request) else ""
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.perf_counter()
        with bound_request_id(request_id):
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
        response["X-Request-ID"] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


def axes_client_ip(request: HttpRequest) -> str:
    """The address django-axes locks out (settings.AXES_CLIENT_IP_CALLABLE): the audit's too."""
    return client_ip(request) or "0.0.0.0"


class StaffSessionTimeoutMiddleware:
    """Ends a staff session after SESSION_IDLE_TIMEOUT without requests, or SESSION_ABSOLUTE_TIMEOUT
    after login, whichever comes first. The last-seen time is written at most once a minute."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            session = request.session
            started = session.get("_auth_started")
            seen = session.get("_auth_seen", started)
            if started is None:
                session["_auth_started"] = session["_auth_seen"] = now
            elif (
                now - float(started) > settings.SESSION_ABSOLUTE_TIMEOUT
                or now - float(seen) > settings.SESSION_IDLE_TIMEOUT
            ):
                # LoginRequiredMiddleware, next in line, sends the now anonymous user to log in.
                logout(request)
            elif now - float(seen) > 60:
                session["_auth_seen"] = now
        return self.get_response(request)


def stamp_session_start(sender: object, request: HttpRequest | None, user: object, **_: object):
    """At login, start the staff session's clocks (so the first request need not write them)."""
    if request is not None and hasattr(request, "session"):
        request.session["_auth_started"] = request.session["_auth_seen"] = time.time()


def axes_username(request: HttpRequest, credentials: dict | None = None) -> str:
    """The username django-axes records, cut to what a username can be (150 characters): a longer
    one cannot belong to anyone, and must not overflow axes' own column."""
    if credentials:
        return str(credentials.get("username") or "")[:150]
    # The sign-in form (allauth) posts the username as `login`.
    post = getattr(request, "POST", {})
    return str(post.get("login") or post.get("username") or "")[:150]


class RejectMalformedInputMiddleware:
    """400 for admin query strings Django's admin cannot survive: a NUL byte in a list filter
    (PostgreSQL refuses it mid-query) or an empty `_to_field`. The console's own pages and forms
    answer such input with a message of their own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/admin/"):
            if self._has_nul(request.GET):
                return HttpResponseBadRequest("The query string contains a NUL character.")
            if request.GET.get("_to_field", None) == "":
                return HttpResponseBadRequest("Empty _to_field.")
        return self.get_response(request)

    @staticmethod
    def _has_nul(data: QueryDict) -> bool:
        return any(
            "\x00" in key or any("\x00" in v for v in values) for key, values in data.lists()
        )
