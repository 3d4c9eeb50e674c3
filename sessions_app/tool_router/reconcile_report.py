"""What reconciliation did, item by item: the report `reconcile_sessions` prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

ACTION = "session.reconcile"


class Result:
    """What reconciliation did about one item (the first word of its report line)."""

    ADOPTED = "adopted"  # Composio's session (or configuration) is now what the console records
    DELETED = "deleted"  # a session nobody should use was deleted at Composio
    CLOSED = "closed"  # nothing needed doing (already settled, or Composio never acted)
    UNVERIFIABLE = "unverifiable"  # cannot be checked (no remote id); closed, and says so
    RETRY = "retry"  # Composio failed just now; left as it was for the next run
    HUMAN = "human"  # needs a person: the line says why and what to do
    BUSY = "busy"  # another run holds it right now


ORDER = (
    Result.ADOPTED,
    Result.DELETED,
    Result.CLOSED,
    Result.UNVERIFIABLE,
    Result.RETRY,
    Result.HUMAN,
    Result.BUSY,
)


@dataclass(frozen=True)
class ReconcileItem:
    ref: str  # "operation <uuid>" or "session <session id>"
    end_user: str
    result: str
    message: str

    def line(self) -> str:
        return f"{self.result.upper():<12} {self.ref} ({self.end_user}): {self.message}"


@dataclass(frozen=True)
class StaleSession:
    """An active session Composio no longer knows (`drift`): reconciliation cannot settle it,
    a person refreshes it (or re-creates missing sessions in bulk)."""

    masked_id: str
    end_user: str
    since: str

    def line(self) -> str:
        return (
            f"{'STALE':<12} session {self.masked_id} ({self.end_user}): Composio no longer knows "
            f"it (since {self.since} UTC); refresh it, or re-create missing sessions in the admin."
        )


@dataclass
class ReconcileReport:
    items: list[ReconcileItem] = field(default_factory=list)
    # Every active session marked stale (up to the run's limit), and how many there are.
    stale: list[StaleSession] = field(default_factory=list)
    stale_total: int = 0

    def totals(self) -> dict[str, int]:
        counts = Counter(item.result for item in self.items)
        return {result: counts.get(result, 0) for result in ORDER}

    @property
    def needs_human(self) -> list[ReconcileItem]:
        return [item for item in self.items if item.result == Result.HUMAN]

    @property
    def retry_later(self) -> list[ReconcileItem]:
        return [item for item in self.items if item.result == Result.RETRY]

    def summary(self) -> str:
        if not self.items:
            text = "Nothing to reconcile."
        else:
            totals = self.totals()
            parts = ", ".join(f"{totals[r]} {r}" for r in ORDER)
            text = f"{len(self.items)} items: {parts}."
        if self.stale_total:
            text += (
                f"\n{self.stale_total} active sessions are stale: Composio no longer knows them "
                "(found by verify_sessions or when someone used them). Refresh them, or run the "
                "admin's 're-create missing sessions' action."
            )
        return text
