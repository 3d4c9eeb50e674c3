"""How a session's rows change when Composio has acted: shared by the services and
reconciliation, so both record the same thing the same way."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils import timezone

from sessions_app.models import SessionToolkit, Toolkit, ToolRouterSession


def store_toolkit_links(session: ToolRouterSession, slugs: Sequence[str]) -> None:
    """Replace the session's toolkit links (the rows the access reports count) with `slugs`."""
    SessionToolkit.objects.filter(session=session).delete()
    ids = dict(Toolkit.objects.filter(slug__in=list(slugs)).values_list("slug", "pk"))
    SessionToolkit.objects.bulk_create(
        [SessionToolkit(session=session, toolkit_id=ids[s]) for s in slugs if s in ids]
    )


def mark_deleted(session: ToolRouterSession) -> None:
    """Record that the session is deleted, here and at Composio; the row is kept for history."""
    now = timezone.now()
    session.status = ToolRouterSession.Status.DELETED
    session.deleted_at = now
    session.remote_deleted_at = session.remote_deleted_at or now
    session.remote_delete_error = ""
    session.save(update_fields=["status", "deleted_at", "remote_deleted_at", "remote_delete_error"])


def mark_remote_deleted(session: ToolRouterSession) -> None:
    """Record that a superseded session is gone at Composio too."""
    session.remote_deleted_at = timezone.now()
    session.remote_delete_error = ""
    session.save(update_fields=["remote_deleted_at", "remote_delete_error"])
