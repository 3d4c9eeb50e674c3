"""Running a tool in a session at Composio. The console's pages do not run tools; `seed_demo`
does, so the demo has an execution log (successes, failures) to show."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sessions_app.composio import seam as composio_seam
from sessions_app.models import ToolRouterSession

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecutionOutcome:
    """`ran`: Composio ran the tool (its result may still be "failed"); `refused`: it would not
    (for instance no active connection), with Composio's message."""

    ran: bool
    result_type: str = ""
    log_id: str = ""
    message: str = ""


def tool_router_session_execute(
    *, session: ToolRouterSession, tool_slug: str, arguments: dict[str, Any] | None = None
) -> ExecutionOutcome:
    """Run `tool_slug` in the session once; never raises for Composio's answers."""
    try:
        result = composio_seam.execute_tool(session.session_id, tool_slug, arguments)
    except composio_seam.ComposioError as exc:
        logger.info("%s refused in session %s: %s", tool_slug, session.session_id, exc.message)
        return ExecutionOutcome(ran=False, message=exc.message)
    return ExecutionOutcome(
        ran=True, result_type=result.result_type, log_id=result.log_id, message=result.error
    )


def composio_is_emulated() -> bool:
    """Whether the console talks to the bundled emulator (no COMPOSIO_API_KEY)."""
    return composio_seam.is_emulated()
