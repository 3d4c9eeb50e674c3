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
    # Composio's connected-account status (INITIALIZING, INITIATED, ACTIVE, FAILED, EXPIRED,
    # INACTIVE, REVOKED) or None if no account is connected yet.
    status: str | None
    connected_account_id: str | None

    @property
    def connected(self) -> bool:
        """Whether the toolkit can run now: no auth needed, or its account is ACTIVE."""
        return self.no_auth or self.status == "ACTIVE"

    @property
    def state(self) -> str:
        """One word for a badge: Composio's status in lower case (active, initializing,
        initiated, failed, expired, inactive, revoked), no_auth or not_connected."""
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


@dataclass(frozen=True)
class ToolExecution:
    """One tool run in a session: Composio's `result_type` (completed, failed, ...), the id of
    its execution log entry and its error ("" when none)."""

    tool_slug: str
    result_type: str
    log_id: str
    error: str

    @property
    def ok(self) -> bool:
        return self.result_type == "completed"


@dataclass(frozen=True)
class ConnectedAccount:
    """One of an end user's connected accounts at Composio (they belong to the user and an auth
    config, not to a session). Times are Composio's ISO 8601 strings ("" when absent)."""

    id: str
    user_id: str
    toolkit: str
    status: str
    status_reason: str
    is_disabled: bool
    created_at: str
    updated_at: str
    auth_config_id: str
    auth_scheme: str
    auth_config_managed: bool

    @property
    def state(self) -> str:
        """The status in lower case, for a badge's word and colour."""
        return self.status.lower() or "unknown"


@dataclass(frozen=True)
class ConnectLink:
    """A connect link Composio made for a session's toolkit. `redirect_url` is shown once to the
    staff user who asked for it and never stored or logged."""

    redirect_url: str
    connected_account_id: str

    def __repr__(self) -> str:
        return f"ConnectLink(connected_account_id={self.connected_account_id!r})"


@dataclass(frozen=True)
class ExecutionLogEntry:
    """One entry of Composio's tool execution log, as its search lists it: when (epoch ms),
    `success` or `failed`, Composio's message, the duration (ms, None when not recorded) and the
    meta tool call it ran under (`parent_tool_slug`, "" when none). The search names no tool or
    toolkit; `tool_slug` is read from the message when it starts with one ("" otherwise)."""

    log_id: str
    at_ms: float
    status: str
    message: str
    duration_ms: float | None
    tool_slug: str
    parent_tool_slug: str


@dataclass(frozen=True)
class ExecutionLogPage:
    entries: tuple[ExecutionLogEntry, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class ExecutionLogDetail:
    """One entry in full. `data` (tool, toolkit, user, account, arguments, response, error) and
    `metadata` are Composio's as sent: they may hold secrets, so nothing renders them unredacted
    (`tool_router.redaction`)."""

    entry: ExecutionLogEntry
    session_id: str
    user_id: str
    toolkit_slug: str
    data: dict
    metadata: dict


@dataclass(frozen=True)
class ConfigVersion:
    """One entry of Composio's record of a session's configuration (`config_history`)."""

    version: int
    created_at: str  # ISO time Composio gives the entry
    is_current: bool
    toolkits: tuple[str, ...]  # the toolkits enabled at this version
