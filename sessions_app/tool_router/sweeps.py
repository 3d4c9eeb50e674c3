"""The loop of a resumable sweep against Composio (`drift.verify_sessions`,
`attention.attention_sweep`): items in the order the sweep's queue gives (checked longest ago
first), each paid for from the shared budget before it is asked, its result reported as it comes.
A run stops early on a 429 (Composio asked to slow down), after STOP_AFTER_FAULTS faults in a row
(Composio is down), or when the budget stays spent; what it did not reach is first in line next
run, because each sweep's queue orders by when an item was last checked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sessions_app.composio import seam as composio_seam

STOP_AFTER_FAULTS = 5

Target = TypeVar("Target")
Item = TypeVar("Item")


@dataclass
class SweepRun(Generic[Item]):
    """What every sweep's report carries: the items as they came, why and where it stopped."""

    queued: int = 0
    not_reached: int = 0
    stopped: str = ""
    items: list[Item] = field(default_factory=list)


def sweep(
    pks: Sequence[Any],
    run: SweepRun[Item],
    *,
    load: Callable[[Any], Target | None],
    pay: Callable[[], bool],
    check: Callable[[Target], tuple[Item, composio_seam.ComposioError | None]],
    on_item: Callable[[Item], None] | None = None,
) -> None:
    """`load` each pk (None: nothing to check any more, skipped unpaid), `pay` for it (False:
    the budget stayed spent: stop), `check` it: (its result, the fault that kept it unchecked)."""
    run.queued = len(pks)
    faults_in_a_row = 0
    for index, pk in enumerate(pks):
        target = load(pk)
        if target is None:
            continue
        if not pay():
            run.stopped = "Composio's shared request budget is spent"
            run.not_reached = len(pks) - index
            return
        item, fault = check(target)
        run.items.append(item)
        if on_item is not None:
            on_item(item)
        faults_in_a_row = faults_in_a_row + 1 if fault is not None else 0
        if isinstance(fault, composio_seam.ComposioRateLimited):
            run.stopped = "Composio is rate limiting requests"
        elif faults_in_a_row >= STOP_AFTER_FAULTS:
            run.stopped = f"{faults_in_a_row} checks in a row failed (is Composio down?)"
        if run.stopped:
            run.not_reached = len(pks) - index - 1
            return
