"""Whether Composio still knows a stored session (one read; nothing is written anywhere)."""

from __future__ import annotations

from sessions_app.composio import seam as composio_seam
from sessions_app.models import ToolRouterSession


def known_at_composio(session: ToolRouterSession) -> bool:
    """True if Composio answers for the session, False if it says not found.

    Any other failure (unreachable, rate limited, ...) raises the seam's `ComposioError`.
    """
    try:
        composio_seam.get_session(session.session_id)
    except composio_seam.ComposioNotFound:
        return False
    return True
