"""What a session service answers: an outcome, a sentence for people, and for callers that
retry (bulk jobs) why it did not succeed."""

from __future__ import annotations

from dataclasses import dataclass

from sessions_app.models import EndUser, ToolRouterSession


class Outcome:
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNKNOWN = "unknown"
    REFUSED = "refused"
    IN_PROGRESS = "in_progress"


class Cause:
    """Why a call did not succeed, for callers that decide whether to try again (bulk jobs)."""

    NONE = ""
    RATE_LIMITED = "rate_limited"  # Composio answered 429: wait `retry_after`, then retry
    TRANSIENT = "transient"  # Composio did not act (unreachable, 503): safe to retry
    PERMANENT = "permanent"  # refused, rejected, skipped or unknown: do not re-send


@dataclass(frozen=True)
class SessionResult:
    end_user: EndUser
    outcome: str
    message: str
    session: ToolRouterSession | None = None
    cause: str = Cause.NONE
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.SUCCEEDED
