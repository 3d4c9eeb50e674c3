"""What the seam hands back: small frozen records, never SDK objects."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteSession:
    session_id: str
    user_id: str
    mcp_url: str
    mcp_type: str
    toolkits: tuple[str, ...]
    config_version: int | None

    def __repr__(self) -> str:
        # Keep the MCP URL out of reprs, tracebacks and log lines.
        return (
            f"RemoteSession(session_id={self.session_id!r}, user_id={self.user_id!r}, "
            f"toolkits={self.toolkits!r}, config_version={self.config_version!r})"
        )


@dataclass(frozen=True)
class ToolkitConnection:
    slug: str
    name: str
    no_auth: bool
    # Composio's connected-account status (ACTIVE, INITIATED, FAILED, EXPIRED) or None if no
    # account is connected yet.
    status: str | None
    connected_account_id: str | None

    @property
    def state(self) -> str:
        """One word for a badge: active, initiated, failed, expired, no_auth or not_connected."""
        if self.no_auth:
            return "no_auth"
        return (self.status or "not_connected").lower()


@dataclass(frozen=True)
class CatalogToolkit:
    slug: str
    name: str
    auth_schemes: tuple[str, ...]
    no_auth: bool
    categories: tuple[str, ...]
    description: str
