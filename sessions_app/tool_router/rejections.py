"""Audited rejections of input a form turned away before any service ran.

The admin's forms check a toolkit choice or a CSV file on their own page; these record the
rejection the way the services record theirs, so the admin itself writes no audit event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.http import HttpRequest

from sessions_app import access
from sessions_app.audit import log as audit
from sessions_app.models import AuditEvent
from sessions_app.tool_router import services


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
    audit.record(
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


def end_user_import_checked(
    *, content: bytes, actor: access.Actor, request: HttpRequest | None = None
) -> services.ImportPreview:
    """Preview a CSV of end users (`services.end_user_import_preview`); writes no end user.

    A malformed file is audited as one rejected `enduser.import` event.
    """
    preview = services.end_user_import_preview(content=content)
    if preview.error:
        # Given a malformed file the import service writes nothing but that one event; letting
        # it see the file keeps the event written in one place.
        services.end_user_import(content=content, actor=actor, request=request)
    return preview
