"""Audit receivers for allauth's MFA signals: enrolment, removal, new recovery codes and the use
of a recovery code, each with who, when and from where (`trail.record` takes the trusted client
IP from the request)."""

from __future__ import annotations

from typing import Any

from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator

from sessions_app import trail
from sessions_app.models import AuditEvent


def _record(action: str, request: Any, user: Any, authenticator: Any, **details: Any) -> None:
    trail.record(
        action=action,
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=user,
        request=request,
        details={"type": str(authenticator.type), **details},
    )


def on_added(sender: Any, request: Any, user: Any, authenticator: Any, **_: Any) -> None:
    _record("auth.mfa_added", request, user, authenticator)


def on_removed(sender: Any, request: Any, user: Any, authenticator: Any, **_: Any) -> None:
    _record("auth.mfa_removed", request, user, authenticator)


def on_reset(sender: Any, request: Any, user: Any, authenticator: Any, **_: Any) -> None:
    _record("auth.mfa_reset", request, user, authenticator)


def on_used(sender: Any, request: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    if authenticator.type == Authenticator.Type.RECOVERY_CODES:
        # Read back: the code just used is marked in the stored row.
        stored = Authenticator.objects.get(pk=authenticator.pk)
        left = len(stored.wrap().get_unused_codes())
        _record(
            "auth.recovery_code_used",
            request,
            user,
            authenticator,
            codes_left=left,
            reauthenticated=bool(kwargs.get("reauthenticated")),
        )


def connect() -> None:
    mfa_signals.authenticator_added.connect(on_added, dispatch_uid="trc.mfa_added")
    mfa_signals.authenticator_removed.connect(on_removed, dispatch_uid="trc.mfa_removed")
    mfa_signals.authenticator_reset.connect(on_reset, dispatch_uid="trc.mfa_reset")
    mfa_signals.authenticator_used.connect(on_used, dispatch_uid="trc.mfa_used")
