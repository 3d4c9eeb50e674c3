"""Audit receivers for logins and logouts, the SQLite hook the audit triggers rely on, and the
shared cache's table made by `migrate`."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.management import call_command
from django.db.backends.signals import connection_created
from django.http import HttpRequest

from sessions_app import trail
from sessions_app.models import AuditEvent


def _sign_in_methods(request: HttpRequest | None, user: Any) -> list[str]:
    """How this sign-in was proved (allauth's records): password, mfa, socialaccount (SSO)."""
    if request is None or not hasattr(request, "session"):
        return []
    from allauth.account.authentication import get_authentication_records

    return list(
        dict.fromkeys(str(r.get("method")) for r in get_authentication_records(request, user))
    )


def on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    methods = _sign_in_methods(request, user)
    trail.record(
        action="auth.login",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=user,
        request=request,
        details={"methods": methods} if methods else None,
    )


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Django has already masked the password; only the username typed is kept, truncated.
    username = str(credentials.get("username", ""))[:150]
    # A wrong TOTP or recovery code (sessions_app.signin.forms) is sent with step="mfa".
    mfa = kwargs.get("step") == "mfa"
    trail.record(
        action="auth.login_failed",
        outcome=AuditEvent.Outcome.FAILURE,
        # Nobody is authenticated by a failed login, whoever the session belonged to before.
        actor=AnonymousUser(),
        request=request,
        reason="Wrong authentication code." if mfa else "Wrong username or password.",
        details={"username": username, "step": "mfa"} if mfa else {"username": username},
    )


def on_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    trail.record(
        action="auth.logout", outcome=AuditEvent.Outcome.SUCCESS, actor=user, request=request
    )


def on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "trc_audit_erasable", 0, trail.sqlite_erasable, deterministic=False
        )


def create_cache_table(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """After `migrate` (and `flush`): the database cache's table (console/settings.py CACHES),
    so `migrate` alone readies a database; `createcachetable` skips a table that exists."""
    call_command("createcachetable", database=using, verbosity=0)


def connect() -> None:
    user_logged_in.connect(on_login, dispatch_uid="sessions_app.trail.login")
    user_login_failed.connect(on_login_failed, dispatch_uid="sessions_app.trail.login_failed")
    user_logged_out.connect(on_logout, dispatch_uid="sessions_app.trail.logout")
    connection_created.connect(on_connection_created, dispatch_uid="sessions_app.trail.sqlite")
