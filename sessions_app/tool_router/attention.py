"""Users needing attention: end users whose session is in trouble, for support's page.

A user needs attention when a toolkit of their active session has no ACTIVE connected account
but one that is EXPIRED, FAILED, INACTIVE or REVOKED; when their tool executions failed
ATTENTION_FAILED_EXECUTIONS times or more in the last 24 hours; or when their session is stale
(Composio no longer knows it, `tool_router.drift`).

The page never asks Composio: it reads `AttentionState`, one row per end user, which the sweep
(`attention_sweep`: `manage.py sweep_attention`, and the task workers every
ATTENTION_SWEEP_SECONDS once `sweep_attention --schedule` booked it) fills. The sweep asks
Composio two questions per user (their connected accounts; their failed executions of the last
24 hours), users with an active session checked longest ago first, paying for both from the
shared budget before asking (`rate_limit.take_within`). `checked_at` is its place: a run that
stops (killed, the budget spent, Composio rate limiting or down, its batch done) is continued by
the next from the users checked longest ago. A fault changes nothing about that user: their
last known state stays, and they are first in line next time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from sessions_app.composio import seam as composio_seam
from sessions_app.models import AttentionState, EndUser, ToolRouterSession
from sessions_app.tool_router import accounts, rate_limit, sweeps

logger = logging.getLogger(__name__)

PROBLEM_STATUSES = ("EXPIRED", "FAILED", "INACTIVE", "REVOKED")
WINDOW = timedelta(hours=24)
PAGE_SIZE = 50
# What one user costs: the accounts list and one page of the failed executions.
COST_PER_USER = 2

ACCOUNT, EXECUTIONS, STALE = "account", "executions", "stale"


# --- What the page reads -----------------------------------------------------------------------


def needing_attention() -> QuerySet[AttentionState]:
    """Users with a problem, the most recent problem first (the partial index's order)."""
    return AttentionState.objects.filter(problem_at__isnull=False).order_by("-problem_at", "-id")


def attention_count() -> int:
    """How many users need attention: one count over the partial index."""
    return needing_attention().count()


@dataclass(frozen=True)
class AttentionPage:
    """One page of users needing attention (PAGE_SIZE at most, most recent problem first), how
    many need it in all, and the cursors of the pages of newer and older problems (None at
    either end)."""

    rows: list[AttentionState]
    total: int
    newer: str | None
    older: str | None

    @property
    def at_newest(self) -> bool:
        return self.newer is None


def cursor_of(state: AttentionState) -> str:
    assert state.problem_at is not None
    return f"{(state.problem_at - _EPOCH) // timedelta(microseconds=1)}-{state.pk}"


def _parse(cursor: str) -> tuple[datetime, int] | None:
    try:
        micros, pk = (int(part) for part in cursor.split("-", 1))
        return _EPOCH + timedelta(microseconds=micros), pk
    except (ValueError, OverflowError):
        return None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def attention_page(*, after: str = "", before: str = "", oldest: bool = False) -> AttentionPage:
    """A page of users needing attention with their end users, in two queries (the count and
    the rows) whatever the page: keyset paging on the partial index, so the oldest page costs
    what the newest does. `after` (a page's `older` cursor): the problems older than it;
    `before` (a page's `newer` cursor): the newer ones; `oldest`: the PAGE_SIZE oldest. An
    unreadable cursor gives the newest page."""
    total = attention_count()
    rows = needing_attention().select_related("end_user")
    newest_first = ("-problem_at", "-id")
    oldest_first = ("problem_at", "id")
    older_than, newer_than = _parse(after) if after else None, _parse(before) if before else None
    if older_than is not None:
        at, pk = older_than
        found = list(
            rows.filter(problem_at__lte=at)
            .filter(Q(problem_at__lt=at) | Q(id__lt=pk))
            .order_by(*newest_first)[: PAGE_SIZE + 1]
        )
        more_older, more_newer = len(found) > PAGE_SIZE, True
        found = found[:PAGE_SIZE]
    elif newer_than is not None:
        at, pk = newer_than
        found = list(
            rows.filter(problem_at__gte=at)
            .filter(Q(problem_at__gt=at) | Q(id__gt=pk))
            .order_by(*oldest_first)[: PAGE_SIZE + 1]
        )
        more_older, more_newer = True, len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE][::-1]
    elif oldest:
        found = list(rows.order_by(*oldest_first)[:PAGE_SIZE])[::-1]
        more_older, more_newer = False, total > len(found)
    else:
        found = list(rows.order_by(*newest_first)[: PAGE_SIZE + 1])
        more_older, more_newer = len(found) > PAGE_SIZE, False
        found = found[:PAGE_SIZE]
    if not found:
        return AttentionPage(rows=[], total=total, newer=None, older=None)
    return AttentionPage(
        rows=found,
        total=total,
        newer=cursor_of(found[0]) if more_newer else None,
        older=cursor_of(found[-1]) if more_older else None,
    )


# --- The sweep ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """What one check found: the reasons in words, the most recent problem's time (None when
    there is no problem) and the failed executions counted."""

    reasons: list[dict[str, str]]
    problem_at: datetime | None
    failed_executions: int


@dataclass(frozen=True)
class SweepItem:
    end_user: EndUser
    found: str  # "attention", "ok" or "unchecked"
    message: str

    def line(self) -> str:
        return f"{self.found.upper():<10} {self.end_user.external_id}: {self.message}"


@dataclass
class SweepReport(sweeps.SweepRun[SweepItem]):
    attention: int = 0
    ok: int = 0
    could_not_check: int = 0
    cleared: int = 0  # users without an active session any more whose state was cleared

    @property
    def checked(self) -> int:
        return self.attention + self.ok

    def summary(self) -> str:
        if not self.queued:
            text = "No user with an active session to check."
        else:
            text = (
                f"Checked {self.checked} of {self.queued} users: {self.attention} need "
                f"attention, {self.ok} fine, {self.could_not_check} could not be checked "
                "(left for the next run)."
            )
        if self.cleared:
            text += f" {self.cleared} without an active session any more: cleared."
        if self.stopped:
            text += f" Stopped early: {self.stopped}; {self.not_reached} not reached."
        return text


def _queue(*, end_user: EndUser | None, before: datetime, limit: int | None) -> list[int]:
    """Users with an active session not checked since `before`, longest ago first (never
    checked first)."""
    queue = EndUser.objects.filter(sessions__status=ToolRouterSession.Status.ACTIVE).filter(
        Q(attention__isnull=True)
        | Q(attention__checked_at__isnull=True)
        | Q(attention__checked_at__lt=before)
    )
    if end_user is not None:
        queue = queue.filter(pk=end_user.pk)
    ordered = queue.order_by(F("attention__checked_at").asc(nulls_first=True), "pk").values_list(
        "pk", flat=True
    )
    return list(ordered[:limit] if limit is not None else ordered)


def _clear_without_session() -> int:
    """Users whose session ended have nothing to fix any more."""
    return (
        AttentionState.objects.filter(problem_at__isnull=False)
        .exclude(end_user__sessions__status=ToolRouterSession.Status.ACTIVE)
        .update(reasons=[], problem_at=None, failed_executions=0)
    )


def attention_sweep(
    *,
    limit: int | None = None,
    end_user: EndUser | None = None,
    on_item: Callable[[SweepItem], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SweepReport:
    """Check up to `limit` users with an active session (longest-checked first) and store what
    was found in their `AttentionState`. Each user is paid for (COST_PER_USER) from the shared
    budget first, waiting at most ATTENTION_SWEEP_MAX_WAIT_SECONDS: past that the run stops,
    having asked nothing for the rest. Stops too on a 429 or after sweeps.STOP_AFTER_FAULTS faults
    in a row. The next run continues from the users checked longest ago."""
    report = SweepReport()
    report.cleared = _clear_without_session() if end_user is None else 0

    def load(pk: int) -> ToolRouterSession | None:
        return (
            ToolRouterSession.objects.select_related("end_user")
            .filter(end_user_id=pk, status=ToolRouterSession.Status.ACTIVE)
            .first()
        )

    sweeps.sweep(
        _queue(end_user=end_user, before=timezone.now(), limit=limit),
        report,
        load=load,
        pay=lambda: rate_limit.take_within(
            COST_PER_USER, max_wait=settings.ATTENTION_SWEEP_MAX_WAIT_SECONDS, sleep=sleep
        ),
        check=lambda session: _sweep_one(session, report),
        on_item=on_item,
    )
    return report


def _sweep_one(
    session: ToolRouterSession, report: SweepReport
) -> tuple[SweepItem, composio_seam.ComposioError | None]:
    end_user = session.end_user
    try:
        finding = check_end_user(session)
    except composio_seam.ComposioError as exc:
        report.could_not_check += 1
        logger.info("attention: %s not checked: %s", end_user.external_id, exc.message)
        return SweepItem(end_user, "unchecked", f"{exc.message} Last known state kept."), exc
    AttentionState.objects.update_or_create(
        end_user=end_user,
        defaults={
            "reasons": finding.reasons,
            "problem_at": finding.problem_at,
            "failed_executions": finding.failed_executions,
            "checked_at": timezone.now(),
        },
    )
    if finding.problem_at is None:
        report.ok += 1
        return SweepItem(end_user, "ok", "Nothing needs attention."), None
    report.attention += 1
    words = "; ".join(r["text"] for r in finding.reasons)
    return SweepItem(end_user, "attention", words), None


def check_end_user(session: ToolRouterSession) -> Finding:
    """Ask Composio about the user of this active session (two reads; the caller pays) and say
    why they need attention, if they do. Raises ComposioError when either read failed."""
    end_user = session.end_user
    now = timezone.now()
    user_accounts = composio_seam.list_connected_accounts(end_user.external_id)
    page = composio_seam.search_execution_logs(
        filters=[("user_id", end_user.external_id), ("status", "failed")],
        limit=composio_seam.LOG_PAGE_MAX,
        since_ms=(now - WINDOW).timestamp() * 1000,
        until_ms=now.timestamp() * 1000,
    )
    reasons: list[dict[str, str]] = []
    times: list[datetime] = []
    for toolkit in session.toolkits:
        theirs = [a for a in user_accounts if a.toolkit == toolkit]
        if any(a.status == "ACTIVE" for a in theirs):
            continue
        bad = [a for a in theirs if a.status in PROBLEM_STATUSES]
        if not bad:
            continue
        account = bad[0]  # Composio lists them newest first
        words = accounts.STATUS_WORDS.get(account.status, account.status.lower())
        text = f"{toolkit}: the connected account is {words}"
        if account.status_reason:
            text += f" ({account.status_reason})"
        reasons.append({"kind": ACCOUNT, "text": text + "."})
        times.append(_when(account.updated_at or account.created_at) or now)
    failed = len(page.entries)
    if failed >= max(1, settings.ATTENTION_FAILED_EXECUTIONS):
        many = f"{failed} or more" if page.next_cursor else str(failed)
        reasons.append(
            {"kind": EXECUTIONS, "text": f"{many} tool executions failed in the last 24 hours."}
        )
        latest = max(e.at_ms for e in page.entries) / 1000
        times.append(datetime.fromtimestamp(latest, tz=UTC))
    if session.stale_since is not None:
        reasons.append(
            {
                "kind": STALE,
                "text": "Composio no longer knows the session (stale): its MCP URL does not work.",
            }
        )
        times.append(session.stale_since)
    return Finding(
        reasons=reasons, problem_at=max(times) if times else None, failed_executions=failed
    )


def _when(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
