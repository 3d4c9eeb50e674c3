"""The console's roles: Django groups with the permissions each may use.

The data migration 0002 creates them from a frozen copy of this table; change both together (a new
migration) when a role changes (0013 adds the connected-account permissions).
"""

from __future__ import annotations

SUPPORT = "Support"
SESSION_ADMIN = "Session admin"
AUDITOR = "Auditor"

_SUPPORT_PERMS = [
    "sessions_app.view_enduser",
    "sessions_app.view_toolroutersession",
    "sessions_app.view_toolkit",
    "sessions_app.reveal_mcp_url",
]
# What opening the support console takes (sessions_app.access.SUPPORT_PERMS): the Support role
# holds more (sending reconnect links), which single views ask for on top.
SUPPORT_CONSOLE_PERMS: tuple[str, ...] = tuple(_SUPPORT_PERMS)

ROLE_PERMISSIONS: dict[str, list[str]] = {
    # Looks users up, sees session ids, reveals MCP URLs (audited), sends reconnect links
    # (migration 0013).
    SUPPORT: [*_SUPPORT_PERMS, "sessions_app.create_connect_link"],
    # Everything Support does, plus creating, refreshing, re-scoping and deleting sessions,
    # managing end users and the toolkit allow-list.
    SESSION_ADMIN: [
        *_SUPPORT_PERMS,
        "sessions_app.create_connect_link",
        "sessions_app.change_connected_account",
        "sessions_app.add_enduser",
        "sessions_app.change_enduser",
        "sessions_app.create_session",
        "sessions_app.refresh_session",
        "sessions_app.change_session_toolkits",
        "sessions_app.delete_session",
        "sessions_app.manage_toolkit_allowlist",
        "sessions_app.sync_toolkit_catalog",
        "sessions_app.view_sessionoperation",
    ],
    # Reads the audit trail and access reports; never reveals MCP URLs.
    AUDITOR: [
        "sessions_app.view_auditevent",
        "sessions_app.view_access_report",
        "sessions_app.view_enduser",
        "sessions_app.view_toolroutersession",
        "sessions_app.view_toolkit",
    ],
}
