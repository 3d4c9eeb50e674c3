"""Temporary: the old module's names while the admin and bulk packages move to the new ones."""

from __future__ import annotations

from sessions_app.tool_router.end_users import (  # noqa: F401
    IMPORT_COLUMNS,
    IMPORT_MAX_BYTES,
    IMPORT_MAX_ROWS,
    ImportPreview,
    ImportRow,
    end_user_import,
    end_user_import_preview,
)
from sessions_app.tool_router.mcp_url import masked_text as mcp_url_masked  # noqa: F401
from sessions_app.tool_router.results import Cause, Outcome, SessionResult  # noqa: F401
from sessions_app.tool_router.sessions import (  # noqa: F401
    RemoteDeleteRetryResult,
    tool_router_session_change_toolkits,
    tool_router_session_create,
    tool_router_session_delete,
    tool_router_session_refresh,
    tool_router_session_retry_remote_deletes,
)
from sessions_app.tool_router.toolkit_catalog import (  # noqa: F401
    CatalogSyncResult,
    toolkit_catalog_sync,
    toolkit_choices_clean,
    validation_message,
)
