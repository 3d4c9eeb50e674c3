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


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address: REMOTE_ADDR, or the entry our own proxies added to X-Forwarded-For.

    With DJANGO_TRUSTED_PROXY_COUNT=N, the N-th address from the right of X-Forwarded-For is the
    one the outermost trusted proxy saw; anything left of it was written by the client and is
    ignored, so it cannot be spoofed to dodge the login lock-out or the audit trail. An
    IPv4-mapped IPv6 address is given as its IPv4 address, the form the database gives back (so
    the audit hash chain verifies). None without a request or a parseable address.
    """
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    candidate = remote
    if count > 0 and forwarded:
        parts = [p.strip() for p in forwarded.split(",") if p.strip()]
        if parts:
            candidate = parts[-count] if len(parts) >= count else parts[0]
    try:
        ip = ipaddress.ip_address(candidate.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)
