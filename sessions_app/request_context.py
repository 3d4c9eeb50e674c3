"""What the console knows about the request being served, for code with no request at hand.

No middleware lives here: the audit log and the log filter read the request id and the client's
address through this module, and `sessions_app.middleware` sets the id.
"""

from __future__ import annotations

import contextvars
import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core import checks
from django.http import HttpRequest

# "-" outside a request (a management command, a task), as the log lines show it.
NO_REQUEST_ID = "-"
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "request_id", default=NO_REQUEST_ID
)


def current_request_id() -> str:
    """The id of the request being served, or "-" outside one."""
    return _request_id.get()


@contextmanager
def bound_request_id(request_id: str) -> Iterator[None]:
    """Make `request_id` the current one for the duration of the block."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def from_trusted_proxy(request: HttpRequest) -> bool:
    """Whether the peer that sent `request` (its REMOTE_ADDR) is in settings.TRUSTED_PROXIES.

    Only such a peer's X-Forwarded-For/-Proto/-Ssl and X-Request-ID are believed; anyone else
    could write them to choose their own address, scheme or request id.
    """
    peer = _address(request.META.get("REMOTE_ADDR", ""))
    return peer is not None and any(peer in network for network in settings.TRUSTED_PROXIES)


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address: REMOTE_ADDR, or the entry our own proxies added to X-Forwarded-For.

    X-Forwarded-For is read only when the peer is a trusted proxy (`from_trusted_proxy`). Then,
    with DJANGO_TRUSTED_PROXY_COUNT=N, the N-th address from the right is the one the outermost
    trusted proxy saw; anything left of it was written by the client and is ignored, so it cannot
    be spoofed to dodge the login lock-out or the audit trail. An IPv4-mapped IPv6 address is given
    as its IPv4 address, the form the database gives back (so the audit hash chain verifies).
    None without a request or a parseable address.
    """
    if request is None:
        return None
    candidate = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if count > 0 and forwarded and from_trusted_proxy(request):
        parts = [p.strip() for p in forwarded.split(",") if p.strip()]
        if parts:
            candidate = parts[-count] if len(parts) >= count else parts[0]
    ip = _address(candidate)
    return None if ip is None else str(ip)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """`text` as an address, an IPv4-mapped IPv6 one as IPv4; None if it is not one."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@checks.register(checks.Tags.security, deploy=True)
def check_trusted_proxies(**kwargs: object) -> list[checks.CheckMessage]:
    """Proxy settings that would silently do nothing: forwarded headers are believed only from
    DJANGO_TRUSTED_PROXIES, so a hop count or a TLS proxy with an empty list has no effect."""
    if settings.TRUSTED_PROXIES:
        return []
    hint = "Set DJANGO_TRUSTED_PROXIES to the proxy's address or network (CIDR)."
    found: list[checks.CheckMessage] = []
    if settings.TRUSTED_PROXY_COUNT > 0:
        found.append(
            checks.Warning(
                "DJANGO_TRUSTED_PROXY_COUNT is set but DJANGO_TRUSTED_PROXIES is empty: "
                "X-Forwarded-For is ignored from every peer and each client is its REMOTE_ADDR.",
                hint=hint,
                id="sessions_app.W001",
            )
        )
    if settings.SECURE_PROXY_SSL_HEADER:
        found.append(
            checks.Warning(
                "DJANGO_BEHIND_TLS_PROXY is on but DJANGO_TRUSTED_PROXIES is empty: "
                "X-Forwarded-Proto is dropped from every peer, so no request counts as HTTPS.",
                hint=hint,
                id="sessions_app.W002",
            )
        )
    return found
