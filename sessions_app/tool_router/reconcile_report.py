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


@dataclass
class ReconcileReport:
    items: list[ReconcileItem] = field(default_factory=list)

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
            return "Nothing to reconcile."
        totals = self.totals()
        parts = ", ".join(f"{totals[r]} {r}" for r in ORDER)
        return f"{len(self.items)} items: {parts}."
