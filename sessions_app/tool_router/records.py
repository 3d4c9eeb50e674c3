"""How a session's rows change when Composio has acted: shared by the services and
reconciliation, so both record the same thing the same way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils import timezone

from sessions_app import batch_update
from sessions_app.models import SessionToolkit, ToolRouterSession
from sessions_app.tool_router import rollups, toolkit_catalog


def _replace_links(
    session: ToolRouterSession,
    slugs: Sequence[str],
    *,
    new: bool = False,
    ids: dict[str, int] | None = None,
) -> set[int]:
    """Store the session's links to the toolkits `slugs` name (`ids`: their ids, if already
    looked up); the toolkit ids linked."""
    if not new:  # a session just stored has no links yet
        SessionToolkit.objects.filter(session=session).delete()
    if ids is None:
        ids = toolkit_catalog.toolkit_ids(slugs)
    SessionToolkit.objects.bulk_create(
        [SessionToolkit(session=session, toolkit_id=ids[s]) for s in slugs if s in ids]
    )
    return {ids[s] for s in slugs if s in ids}


def store_new_session_links(
    session: ToolRouterSession,
    slugs: Sequence[str],
    *,
    superseded: ToolRouterSession | None = None,
    superseded_at: datetime | None = None,
) -> None:
    """Store a new session's toolkit links (the rows the access reports count) and add its grants
    (and the revocations of `superseded`, the session it replaced at `superseded_at`) to the
    daily rollup, in the caller's transaction."""
    # The old session's links are its toolkits' rows (every write of its links wrote them from
    # its toolkits): looked up with the new ones, not read back.
    old = list(superseded.toolkits) if superseded is not None else []
    ids = toolkit_catalog.toolkit_ids([*slugs, *old])
    links = _replace_links(session, slugs, new=True, ids=ids)
    rollups.session_stored(
        session,
        links=links,
        superseded=superseded,
        superseded_at=superseded_at,
        superseded_links={ids[s] for s in old if s in ids},
    )


def store_toolkit_links(
    session: ToolRouterSession, slugs: Sequence[str], *, audited_change: bool = False
) -> None:
    """Replace an existing session's toolkit links with `slugs` (an in-place change) and add the
    difference to the daily rollup (`audited_change`: the caller writes a
    `session.change_toolkits` event, which the report counts on its day)."""
    before = set(
        SessionToolkit.objects.filter(session=session).values_list("toolkit_id", flat=True)
    )
    after = _replace_links(session, slugs)
    rollups.links_changed(session, before, after, audited=audited_change)


def mark_deleted(session: ToolRouterSession) -> None:
    """Record that the session is deleted, here and at Composio; the row is kept for history."""
    now = timezone.now()
    if session.superseded_at is None and session.deleted_at is None:
        rollups.session_ended(session, at=now)
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


def mark_remote_deleted_many(deleted: Sequence[tuple[int, datetime]]) -> None:
    """`mark_remote_deleted` for many sessions (their ids, and when each went), in one
    statement."""
    batch_update.update_from_values(
        ToolRouterSession,
        ["remote_deleted_at", "remote_delete_error"],
        [(pk, at, "") for pk, at in deleted],
    )
