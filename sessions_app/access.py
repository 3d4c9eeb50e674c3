"""Access checks for the console's views: deny by default, refuse with a 403 and an audit event."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from http import HTTPStatus
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from sessions_app import roles
from sessions_app.audit import log as audit
from sessions_app.http import HtmxHttpRequest
from sessions_app.models import AuditEvent

# Using the support console takes the Support role's permissions (the Auditor has the view
# permissions too, but is not a support agent: it lacks reveal_mcp_url).
SUPPORT_PERMS: tuple[str, ...] = tuple(roles.ROLE_PERMISSIONS[roles.SUPPORT])

View = Callable[..., HttpResponse]


def wants_fragment(request: HtmxHttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def forbidden(request: HtmxHttpRequest, reason: str) -> HttpResponse:
    template = (
        "sessions_app/_forbidden.html" if wants_fragment(request) else "sessions_app/forbidden.html"
    )
    response = render(request, template, {"reason": reason}, status=HTTPStatus.FORBIDDEN)
    patch_vary_headers(response, ("HX-Request",))
    return response


def console_permission_required(*extra: str) -> Callable[[View], View]:
    """The Support permissions plus `extra`; anonymous -> login, lacking any -> 403, audited."""
    needed = (*SUPPORT_PERMS, *extra)

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            missing = [perm for perm in needed if not user.has_perm(perm)]
            if missing:
                audit.record(
                    action="access.refused",
                    outcome=AuditEvent.Outcome.REFUSED,
                    request=request,
                    reason=f"{request.method} {request.path} needs {', '.join(missing)}",
                    details={"view": view.__name__, "path": request.path, "missing": missing},
                )
                return forbidden(request, "Your account does not have the permission for this.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
