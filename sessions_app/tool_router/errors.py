"""The errors Composio calls end in, as services let them through.

Views, the admin and commands catch these to explain what happened; they import them from here,
never from the seam (only services call the seam).
"""

from __future__ import annotations

from sessions_app.composio.errors import (
    ComposioConflict,
    ComposioError,
    ComposioNotConfigured,
    ComposioNotFound,
    ComposioRateLimited,
    ComposioRejected,
    ComposioUnavailable,
)

__all__ = [
    "ComposioConflict",
    "ComposioError",
    "ComposioNotConfigured",
    "ComposioNotFound",
    "ComposioRateLimited",
    "ComposioRejected",
    "ComposioUnavailable",
]
