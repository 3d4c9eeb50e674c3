"""A session's connection state per toolkit, read from Composio."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest

from sessions_app.composio import seam as composio_seam
from sessions_app.models import ToolRouterSession

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionCheck:
    connections: list[composio_seam.ToolkitConnection]
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def tool_router_session_connections(
    *,
    session: ToolRouterSession,
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None = None,
) -> ConnectionCheck:
    """Ask Composio for each toolkit's connection state. Never raises for Composio's failures:
    the error is a sentence to show where the badges would be. Changes nothing anywhere."""
    try:
        connections = composio_seam.session_connections(session.session_id)
    except composio_seam.ComposioError as exc:
        logger.info(
            "connection check failed for session %s by %s: %s",
            session.session_id,
            getattr(actor, "pk", None),
            exc.message,
        )
        return ConnectionCheck(connections=[], error=exc.message)
    return ConnectionCheck(connections=_ordered(connections, session.toolkits))


def _ordered(
    connections: Iterable[composio_seam.ToolkitConnection], toolkits: list[str]
) -> list[composio_seam.ToolkitConnection]:
    rank = {slug: i for i, slug in enumerate(toolkits)}
    return sorted(connections, key=lambda c: (rank.get(c.slug, len(rank)), c.slug))
