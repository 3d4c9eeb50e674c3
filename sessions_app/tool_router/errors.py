"""The errors Composio calls end in, as services let them through, and the console's own
refusal to call: `BudgetSpent`.

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


class BudgetSpent(ComposioRateLimited):
    """A web request's call to Composio did not fit the shared request budget (the one bulk jobs
    draw from, `rate_limit`) within COMPOSIO_WEB_MAX_WAIT_SECONDS: nothing was sent, nothing was
    taken from the budget. A `ComposioRateLimited`, so callers that handle Composio's own 429
    (retry after `retry_after`) handle this the same way."""

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(
            f"Composio's request budget is spent; try again in {retry_after} s. "
            "Nothing was sent to Composio.",
            retry_after=retry_after,
        )


__all__ = [
    "BudgetSpent",
    "ComposioConflict",
    "ComposioError",
    "ComposioNotConfigured",
    "ComposioNotFound",
    "ComposioRateLimited",
    "ComposioRejected",
    "ComposioUnavailable",
]
