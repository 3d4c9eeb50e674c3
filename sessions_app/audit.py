"""The one way to write the audit trail."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest
from django.utils import timezone

from .middleware import current_request_id
from .models import AuditEvent, EndUser, ToolRouterSession

# Keys that would carry a secret or a full MCP URL; writing one is a programming error.
_FORBIDDEN_KEYS = frozenset({"mcp_url", "url", "headers", "api_key", "x-api-key", "mcp_headers"})


def mcp_fingerprint(url: str) -> str:
    """A short keyed fingerprint of an MCP URL: safe to log, useless to an attacker."""
    key = settings.MCP_FINGERPRINT_KEY.encode()
    return hmac.new(key, url.encode(), hashlib.sha256).hexdigest()[:12]


def _scrub(value: Any) -> Any:
    api_key = settings.COMPOSIO_API_KEY
    if isinstance(value, str):
        return value.replace(api_key, "[redacted]") if api_key and api_key in value else value
    if isinstance(value, Mapping):
        bad = _FORBIDDEN_KEYS.intersection(str(k).lower() for k in value)
        if bad:
            raise ValueError(f"Audit details must not carry {sorted(bad)}; log a fingerprint.")
        return {str(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    return value


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    *,
    action: str,
    outcome: str,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    request: HttpRequest | None = None,
    end_user: EndUser | None = None,
    session: ToolRouterSession | None = None,
    reason: str = "",
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Raises if it cannot be written: callers that fail closed rely on it."""
    if outcome not in AuditEvent.Outcome.values:
        raise ValueError(f"Unknown audit outcome {outcome!r}")
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    user = actor if actor is not None and actor.is_authenticated else None
    return AuditEvent.objects.create(
        created_at=timezone.now(),
        actor=user,
        actor_username=user.get_username() if user is not None else "",
        ip_address=client_ip(request),
        request_id=getattr(request, "request_id", None) or _request_id_or_blank(),
        action=action,
        outcome=outcome,
        end_user=end_user,
        end_user_external_id=end_user.external_id if end_user is not None else "",
        session=session,
        session_ref=session.session_id if session is not None else "",
        reason=_scrub(reason)[:500],
        details=_scrub(dict(details or {})),
    )


def _request_id_or_blank() -> str:
    request_id = current_request_id()
    return "" if request_id == "-" else request_id
