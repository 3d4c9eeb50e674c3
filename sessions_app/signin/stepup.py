"""Step-up before secrets: revealing an MCP URL, sending a reconnect link, starting a bulk job.

Each needs a sign-in or a check (password, TOTP, recovery code, passkey, SSO) within the last
STEP_UP_SECONDS. Otherwise the console audits an `auth.step_up` prompt, keeps the request (a POST
is replayed once the check passes: allauth's suspended request) and asks again; the action runs
only after that, so the action's own event is written only once it succeeds.

`step_up_required(operation)` guards a view; `step_up_response(request, operation)` is the same
check for code that is not a view of its own (an admin action).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from allauth.account.adapter import get_adapter
from allauth.account.authentication import get_authentication_records
from allauth.account.internal.flows.reauthentication import STATE_SESSION_KEY
from allauth.core.internal.httpkit import serialize_request
from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from sessions_app import trail
from sessions_app.models import AuditEvent

View = Callable[..., HttpResponse]

# The operations that ask again (the audit's `details.operation`).
REVEAL = "mcp_url.reveal"
RECONNECT_LINK = "connection.reconnect_link"
BULK_START = "bulk.start"


def step_up_enabled() -> bool:
    return bool(settings.STEP_UP_REQUIRED)


def last_checked_at(request: HttpRequest) -> float | None:
    """When the signed-in user last signed in or passed a check in this session (epoch s)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    times = [
        float(r["at"])
        for r in get_authentication_records(request, user)
        if isinstance(r, dict) and isinstance(r.get("at"), int | float)
    ]
    return max(times) if times else None


def recently_checked(request: HttpRequest, seconds: int | None = None) -> bool:
    at = last_checked_at(request)
    window = settings.STEP_UP_SECONDS if seconds is None else seconds
    return at is not None and time.time() - at < window


def needs_step_up(request: HttpRequest) -> bool:
    return step_up_enabled() and not recently_checked(request)


def _page_of(request: HttpRequest) -> str:
    """The console page the request came from (htmx's current URL or the referrer, this site
    only), to come back to after an SSO step-up; the landing page otherwise."""
    headers = request.headers
    for candidate in (headers.get("HX-Current-URL", ""), headers.get("Referer", "")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            parts = urlsplit(candidate)
            return parts.path + (f"?{parts.query}" if parts.query else "")
    return reverse("landing")


def _suspend(request: HttpRequest) -> str:
    """Where the user proves it is still them, with `next` to come back to.

    A second factor first, then the password: allauth replays a kept POST after either (never as
    an htmx request: the replay answers a full page). An SSO user with neither signs in at the
    provider again and comes back to the page the action was asked from (a redirect is a GET).
    """
    methods = get_adapter(request).get_reauthentication_methods(request.user)
    if not methods:
        from sessions_app.signin.sso import reauthentication_url

        to = reauthentication_url(request)
        return f"{to}&{urlencode({REDIRECT_FIELD_NAME: _page_of(request)})}"
    to = methods[0]["url"]
    path = request.get_full_path()
    if request.method == "POST":
        data = json.loads(serialize_request(request))
        data["META"] = {k: v for k, v in data["META"].items() if not k.startswith("HTTP_HX_")}
        request.session[STATE_SESSION_KEY] = {"request": json.dumps(data)}
    return f"{to}?{urlencode({REDIRECT_FIELD_NAME: path})}"


def step_up_response(request: HttpRequest, operation: str) -> HttpResponse | None:
    """None when the action may go ahead; otherwise the response that asks again (audited)."""
    if not needs_step_up(request):
        return None
    trail.record(
        action="auth.step_up",
        outcome=AuditEvent.Outcome.REFUSED,
        request=request,
        reason="A recent sign-in check is needed first.",
        details={"operation": operation, "window_seconds": settings.STEP_UP_SECONDS},
    )
    url = _suspend(request)
    if getattr(request, "htmx", False):
        # htmx follows a redirect inside the fragment; this sends the whole page there instead.
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


def step_up_required(operation: str) -> Callable[[View], View]:
    """Guard a view: ask again (and replay the request afterwards) unless recently checked."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            asked = step_up_response(request, operation)
            return asked if asked is not None else view(request, *args, **kwargs)

        return wrapper

    return decorator
