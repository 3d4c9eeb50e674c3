from __future__ import annotations

from sessions_app.tool_router import sessions

from ._session_command import Asked, SessionCommand, end_user_from


class Command(SessionCommand):
    help = (
        "Replace an end user's session with a new one (new id and MCP URL) and delete the old "
        "one at Composio. Without --toolkits the current toolkits are kept. Exit codes: 0 "
        "refreshed, 1 bad input/refused/failed, 3 outcome unknown, 4 skipped (no session: use "
        "create_session) or in progress."
    )
    toolkits_help = "Comma-separated toolkit slugs for the new session (default: the current ones)."

    def run(self, asked: Asked) -> sessions.SessionResult:
        return sessions.tool_router_session_refresh(
            end_user=end_user_from(asked.external_id), toolkits=asked.toolkits, actor=asked.actor
        )
