"""Who may do what, and the one way the console says no.

Every "you may not" (a view, an admin page or action, a command, a service) goes through
`refuse`: it audits an `access.refused` event with one details shape (coalesced per actor,
operation and minute by `sessions_app.refusals`, so refusals cannot flood the trail) and returns
a `Refused` exception. Raised from a view or an admin page, Django's 403 handler
(`console.urls.handler403` -> `refused_view`) renders the console's refusal page; a service that
reports per-item outcomes instead returns it as a refused result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import wraps
from http import HTTPStatus
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from sessions_app import refusals, roles

Actor = AbstractBaseUser | AnonymousUser | None
View = Callable[..., HttpResponse]

# Using the support console takes the Support role's console permissions (the Auditor has the
# view permissions too, but is not a support agent: it lacks reveal_mcp_url).
SUPPORT_PERMS: tuple[str, ...] = roles.SUPPORT_CONSOLE_PERMS

# The permission each session operation needs (services, admin actions and bulk jobs share it).
SESSION_PERMISSION: dict[str, str] = {
    "create": "sessions_app.create_session",
    "refresh": "sessions_app.refresh_session",
    "change_toolkits": "sessions_app.change_session_toolkits",
    "delete": "sessions_app.delete_session",
}


class Refused(PermissionDenied):
    """An actor may not do something; its refusal is already audited (written or counted)."""

    def __init__(self, message: str, *, missing: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.missing = tuple(missing)

    @property
    def roles(self) -> list[str]:
        return roles_with(self.missing)


def roles_with(permissions: Iterable[str]) -> list[str]:
    """The roles that hold every one of `permissions` (for "ask for the X role")."""
    wanted = set(permissions)
    if not wanted:
        return []
    return [name for name, perms in roles.ROLE_PERMISSIONS.items() if wanted <= set(perms)]


def may(actor: Actor, *permissions: str) -> bool:
    """Whether `actor` holds every permission. `None` is the system itself (a management
    command run from the server's shell), which may do anything."""
    if actor is None:
        return True
    return bool(actor.is_active and all(actor.has_perm(p) for p in permissions))


def missing(actor: Actor, permissions: Iterable[str]) -> list[str]:
    if actor is None:
        return []
    if not actor.is_active:
        return list(permissions)
    return [p for p in permissions if not actor.has_perm(p)]


def refuse(
    *,
    operation: str,
    reason: str,
    actor: Actor = None,
    request: HttpRequest | None = None,
    missing: Sequence[str] = (),
    end_user: Any = None,
    target: str = "",
    message: str = "",
) -> Refused:
    """Audit the refusal as `access.refused` and return the `Refused` to raise or report.

    `reason` goes to the audit trail; `message` (default: `reason`) is what the person sees.
    The details always have the same keys: the operation refused, the permissions missing,
    the target named (a job, an object id; may be empty), the request's method and path, and
    the coalescing's count, window and coalesced (`sessions_app.refusals`: the first refusal of
    an actor and operation in a minute is written at once, the rest of that minute are counted
    and written as one summary event when the minute is closed).
    """
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    refusals.record(
        operation=operation,
        reason=reason,
        actor=actor,
        request=request,
        end_user=end_user,
        details={
            "operation": operation,
            "missing": list(missing),
            "target": target,
            "method": request.method if request is not None else "",
            "path": request.path[:200] if request is not None else "",
        },
    )
    return Refused(message or reason, missing=missing)


def require(
    actor: Actor,
    *permissions: str,
    operation: str,
    reason: str | None = None,
    request: HttpRequest | None = None,
    target: str = "",
) -> None:
    """Raise `Refused` (audited) unless `actor` holds every one of `permissions`."""
    lacking = missing(actor, permissions)
    if lacking:
        where = f"{request.method} {request.path[:200]}" if request is not None else operation
        raise refuse(
            operation=operation,
            reason=f"{where} needs {', '.join(lacking)}.",
            message=reason or "Your account does not have the permission for this.",
            actor=actor,
            request=request,
            missing=lacking,
            target=target,
        )


def wants_fragment(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def refusal_response(request: HttpRequest, refused: Refused | PermissionDenied) -> HttpResponse:
    """The console's refusal page (or its fragment for HTMX), 403."""
    message = (
        getattr(refused, "message", "")
        or str(refused)
        or "Your account does not have the permission for this."
    )
    template = (
        "sessions_app/_forbidden.html" if wants_fragment(request) else "sessions_app/forbidden.html"
    )
    context = {"reason": message, "roles": roles_with(getattr(refused, "missing", ()))}
    response = render(request, template, context, status=HTTPStatus.FORBIDDEN)
    patch_vary_headers(response, ("HX-Request",))
    return response


def refused_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's `handler403`: every PermissionDenied, the admin's included, gets the console's page.

    A bare PermissionDenied raised by Django itself (not through `refuse`) is audited here, so
    every refusal is audited exactly once. For an admin page the page says what was refused
    ("You may not change end users.") and names the role that would allow it."""
    if not isinstance(exception, Refused):
        need = _page_needs(request)
        lacking = missing(getattr(request, "user", None), need.permissions)
        where = f"{request.method} {request.path[:200]}"
        exception = refuse(
            operation=need.operation,
            reason=f"{where} needs {', '.join(lacking)}." if lacking else f"{where} refused.",
            message=(str(exception) if exception and str(exception) else "") or need.message,
            request=request,
            missing=lacking,
        )
    return refusal_response(request, exception)


@dataclass(frozen=True)
class _PageNeed:
    operation: str
    permissions: list[str]
    message: str = ""


# What a Django admin model URL does, by the end of its URL name and the request's method.
_ADMIN_VERBS = {
    ("add", "GET"): "add",
    ("add", "POST"): "add",
    ("delete", "GET"): "delete",
    ("delete", "POST"): "delete",
    ("change", "POST"): "change",
}


def _page_needs(request: HttpRequest) -> _PageNeed:
    """The operation a refused page stands for, the permission that would have opened it and
    what to tell the person (for a Django admin model page: adding, changing or deleting that
    model when the request does so, else viewing it)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return _PageNeed("page", [])
    model_admin = getattr(match.func, "model_admin", None)
    if model_admin is None:
        return _PageNeed(match.view_name or "page", [])
    opts = model_admin.model._meta
    page = (match.url_name or "").rsplit("_", 1)[-1]
    verb = _ADMIN_VERBS.get((page, request.method or "GET"), "view")
    codename = f"{verb}_{opts.model_name}"
    return _PageNeed(
        f"admin.{codename}",
        [f"{opts.app_label}.{codename}"],
        f"You may not {verb} {opts.verbose_name_plural}.",
    )


def permission_required(
    *permissions: str, operation: str | None = None, reason: str | None = None
) -> Callable[[View], View]:
    """Anonymous -> login; lacking any of `permissions` -> the console's 403 page, audited once."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            try:
                require(
                    request.user,
                    *permissions,
                    operation=operation or view.__name__,
                    reason=reason,
                    request=request,
                )
            except Refused as refused:
                return refusal_response(request, refused)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def support_required(*extra: str) -> Callable[[View], View]:
    """The support console's pages: the Support permissions plus `extra`."""
    return permission_required(*SUPPORT_PERMS, *extra)
