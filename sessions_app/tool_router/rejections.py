"""Audited rejections of toolkit choices turned away before any service ran.

The admin's forms and the commands check a toolkit choice on their own; this records the
rejection the way the services record theirs, so they write no audit event themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.http import HttpRequest

from sessions_app import access, trail
from sessions_app.models import AuditEvent


def toolkit_choice_rejected(
    *,
    operation: str,
    reason: str,
    toolkits: Sequence[str],
    crafted: bool,
    end_users: Iterable[str],
    actor: access.Actor,
    request: HttpRequest | None = None,
) -> None:
    """Audit one `input.rejected` event for a toolkit choice refused before any session changed.

    `toolkits` are the values posted (at most 50 kept, each cut to 100 characters), `crafted`
    whether any was outside the choices offered, `end_users` the external ids selected (50 kept).
    """
    trail.record(
        action="input.rejected",
        outcome=AuditEvent.Outcome.REJECTED,
        actor=actor,
        request=request,
        reason=reason,
        details={
            "operation": operation,
            "crafted": crafted,
            "toolkits": [value[:100] for value in toolkits[:50]],
            "end_users": list(end_users)[:50],
        },
    )
