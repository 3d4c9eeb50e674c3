"""An end user's connected accounts, as support sees and fixes them.

- The **panel** shows, per toolkit of the session, the account the session uses (masked id,
  status with Composio's `status_reason`, auth config, times) and the user's other accounts (they
  belong to the user, not the session). It reads the session's connection check
  (`connections`, shared cache) and the user's accounts, kept in the same shared cache for
  CONNECTION_STATUS_CACHE_SECONDS: a panel shown again within that time sends nothing.
- A **reconnect link** (`connect_link_create`) asks Composio's session link endpoint for one
  toolkit of the session, with CONNECT_LINK_CALLBACK_URL when set. A toolkit that is not in the
  session is refused without a call. Like a reveal it is limited per staff user
  (CONNECT_LINKS_PER_HOUR): under the staff user's reveal lock, a link counts the user's
  `connect_link.request` events of the last hour and writes its own before the lock is let go,
  so parallel requests cannot all pass the count while their calls are in flight (no lock is
  held during the call). What Composio answered is a second event, `connect_link.create`, with
  the toolkit and the masked account id, never the URL; an unaudited link is not shown.
- **Enabling or disabling** an account (`connected_account_set_enabled`) finds it among the
  session user's own accounts by its masked id's fingerprint (an account id never travels in a
  URL or a form) and patches its status at Composio, audited.

Every request to Composio is paid from the shared budget first (`rate_limit.draw`); a spent
budget sends nothing and says when to try again.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import astuple, dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import ngettext

from sessions_app import access, trail
from sessions_app.composio import seam as composio_seam
from sessions_app.models import AuditEvent, EndUser, RevealLock, ToolRouterSession
from sessions_app.tool_router import connections, mcp_url, rate_limit
from sessions_app.tool_router.errors import BudgetSpent

logger = logging.getLogger(__name__)

Actor = AbstractBaseUser | AnonymousUser | None
ConnectedAccount = composio_seam.ConnectedAccount

CREATE_LINK = "sessions_app.create_connect_link"
CHANGE_ACCOUNT = "sessions_app.change_connected_account"
LINK_ACTION = "connect_link.create"
# A link asked for: written with the limit's count, under the staff user's lock, before the call.
LINK_REQUEST = "connect_link.request"
LINK_WINDOW = timedelta(hours=1)
# Each a status in words; the badge's colour comes from `badge-<status lower case>`.
STATUS_WORDS = {
    "ACTIVE": "active",
    "INITIALIZING": "initializing",
    "INITIATED": "initiated: waiting for the user to connect",
    "FAILED": "failed",
    "EXPIRED": "expired",
    "INACTIVE": "inactive (disabled)",
    "REVOKED": "revoked",
}


# --- What the panel shows ------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountView:
    """One connected account as a page may show it: never its full id."""

    account: ConnectedAccount
    masked_id: str
    key: str  # the fingerprint of its id: how forms name it

    @property
    def status_words(self) -> str:
        return STATUS_WORDS.get(self.account.status, self.account.status.lower() or "unknown")

    @property
    def disabled(self) -> bool:
        return self.account.status == "INACTIVE" or self.account.is_disabled

    @property
    def created(self) -> datetime | None:
        return _when(self.account.created_at)

    @property
    def updated(self) -> datetime | None:
        return _when(self.account.updated_at)


def _when(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class ToolkitRow:
    slug: str
    name: str
    no_auth: bool
    status: str  # the check's status of the account the session uses ("" for none)
    account: AccountView | None
    masked_id: str  # the account the session uses, even when the account list lacks it


@dataclass(frozen=True)
class AccountsPanel:
    rows: list[ToolkitRow] = field(default_factory=list)
    others: list[AccountView] = field(default_factory=list)
    error: str = ""
    age: int | None = None  # seconds since the older of the two checks, None when none
    retry_after: int | None = None
    notice: str = ""
    # Whether the session's own accounts are known (its check answered): if not, `others` is
    # every account of the user, not only those the session does not use.
    session_known: bool = True


def _view(account: ConnectedAccount) -> AccountView:
    return AccountView(
        account=account,
        masked_id=mcp_url.masked_id_text(account.id),
        key=mcp_url.fingerprint(account.id),
    )


def _accounts_key(end_user: EndUser) -> str:
    return f"accounts:{end_user.public_id}"


def _cached_accounts(end_user: EndUser) -> tuple[list[ConnectedAccount], str, float] | None:
    payload = cache.get(_accounts_key(end_user))
    if not isinstance(payload, dict):
        return None
    try:
        accounts = [ConnectedAccount(*row) for row in payload["accounts"]]
        return accounts, str(payload["error"]), float(payload["at"])
    except (KeyError, TypeError, ValueError):
        return None


def _fetch_accounts(
    end_user: EndUser, request: HttpRequest | None
) -> tuple[list[ConnectedAccount], str, float, int | None]:
    """Ask Composio for the user's accounts (one page in almost every case) and keep the answer,
    a failure too, for every view. A spent budget is not kept: nothing was asked."""
    try:
        rate_limit.draw(request, 1)
    except BudgetSpent as spent:
        return [], spent.message, time.time(), spent.retry_after
    try:
        accounts = composio_seam.list_connected_accounts(end_user.external_id)
        error = ""
    except composio_seam.ComposioError as exc:
        accounts, error = [], exc.message
    at = time.time()
    cache.set(
        _accounts_key(end_user),
        {"at": at, "accounts": [astuple(a) for a in accounts], "error": error},
        timeout=max(1, int(settings.CONNECTION_STATUS_CACHE_SECONDS)),
    )
    return accounts, error, at, None


def end_user_accounts(
    end_user: EndUser, request: HttpRequest | None, *, fresh: bool = False
) -> tuple[list[ConnectedAccount], str, float, int | None]:
    """The user's accounts, their error ("" when none), when Composio answered and, when
    nothing could be asked, the seconds to wait."""
    cached = None if fresh else _cached_accounts(end_user)
    if cached is not None:
        return (*cached, None)
    return _fetch_accounts(end_user, request)


def forget(session: ToolRouterSession) -> None:
    """Drop what the cache holds about the session's connections and its user's accounts."""
    connections.tool_router_session_connections_forget(session=session)
    cache.delete(_accounts_key(session.end_user))


def accounts_panel(
    *, session: ToolRouterSession, actor: Actor, request: HttpRequest | None = None
) -> AccountsPanel:
    """The panel from the shared cache while it is fresh, else asked of Composio."""
    check = connections.tool_router_session_connections(
        session=session, actor=actor, request=request
    )
    return _panel(session, check, request, fresh=False)


def accounts_panel_check_now(
    *, session: ToolRouterSession, actor: Actor, request: HttpRequest | None = None
) -> AccountsPanel:
    """Ask Composio now, past the cache: at most once per CONNECTION_CHECK_NOW_SECONDS per staff
    user and session (its own turn, apart from the badges' "check now"); sooner, the cached
    panel comes back with `retry_after` and a notice, and nothing is sent."""
    key = f"accounts:{session.public_id}:now:{getattr(actor, 'pk', None)}"
    limit = max(1, int(settings.CONNECTION_CHECK_NOW_SECONDS))
    now = time.time()
    if not cache.add(key, now, timeout=limit):
        last = cache.get(key)
        wait = max(1, math.ceil(limit - (now - float(last)))) if last is not None else 1
        panel = accounts_panel(session=session, actor=actor, request=request)
        return replace(
            panel,
            retry_after=wait,
            notice=f"You checked these accounts a moment ago; you may check again in {wait} s.",
        )
    forget(session)
    panel = accounts_panel(session=session, actor=actor, request=request)
    if panel.retry_after is not None:
        cache.delete(key)  # nothing was sent: the staff user's turn is not used up
    return panel


def _panel(
    session: ToolRouterSession,
    check: connections.ConnectionCheck,
    request: HttpRequest | None,
    *,
    fresh: bool,
) -> AccountsPanel:
    accounts, error, at, retry_after = end_user_accounts(session.end_user, request, fresh=fresh)
    by_id = {a.id: a for a in accounts}
    used: set[str] = set()
    rows = []
    for c in check.connections:
        account = by_id.get(c.connected_account_id or "")
        if c.connected_account_id:
            used.add(c.connected_account_id)
        rows.append(
            ToolkitRow(
                slug=c.slug,
                name=c.name,
                no_auth=c.no_auth,
                status=c.status or "",
                account=_view(account) if account else None,
                masked_id=mcp_url.masked_id_text(c.connected_account_id or ""),
            )
        )
    others = [_view(a) for a in accounts if a.id not in used]
    ages = [check.age] if check.checked_at is not None else []
    if not error or retry_after is None:
        ages.append(max(0, int(time.time() - at)))
    return AccountsPanel(
        rows=rows,
        others=others,
        error=" ".join(e for e in (check.error, error) if e),
        age=max(ages) if ages else None,
        retry_after=check.retry_after or retry_after,
        notice=check.notice,
        session_known=check.checked_at is not None and not check.error,
    )


# --- Reconnect links -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkResult:
    url: str = ""
    message: str = ""
    status: int = 200  # the HTTP status a page answers with
    retry_after: int | None = None
    masked_account: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.url)


def _lock_staff_user(actor: AbstractBaseUser) -> None:
    """Hold the staff user's reveal lock (which also serialises their links) until the
    surrounding transaction ends (sessions_app.tool_router.reveal explains the lock)."""
    RevealLock.objects.bulk_create([RevealLock(user_id=actor.pk)], ignore_conflicts=True)
    RevealLock.objects.select_for_update().get(user_id=actor.pk)


def _requests_in_last_hour(actor: AbstractBaseUser):
    return AuditEvent.objects.filter(
        action=LINK_REQUEST,
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        created_at__gte=timezone.now() - LINK_WINDOW,
    )


def links_in_last_hour(*, actor: AbstractBaseUser) -> int:
    """Links this staff user asked for in the last hour (whatever Composio answered)."""
    return _requests_in_last_hour(actor).count()


def _limit_reached(actor: AbstractBaseUser, limit: int) -> LinkResult:
    oldest = (
        _requests_in_last_hour(actor)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[max(limit, 1) - 1 : max(limit, 1)]
    )
    moment = next(iter(oldest), None) or timezone.now()
    at = moment + LINK_WINDOW
    seconds = max(1, math.ceil((at - timezone.now()).total_seconds()))
    minutes = math.ceil(seconds / 60)
    when = ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    return LinkResult(
        message=f"You have sent {limit} reconnect links in the last hour, the most allowed; "
        f"try again in {when} (at {at:%H:%M} UTC) or ask a session admin.",
        status=429,
        retry_after=seconds,
    )


def connect_link_create(
    *,
    session: ToolRouterSession,
    toolkit: str,
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> LinkResult:
    """A connect link for one toolkit of the session, to hand to the end user once.

    Refused without a call for a toolkit not in the session (400, audited as rejected) and past
    CONNECT_LINKS_PER_HOUR links of this staff user in the last hour (429, audited as refused).
    Composio's failures come back as a message (nothing shown); the link is shown only once its
    audit event is written."""
    access.require(actor, CREATE_LINK, operation="connect_link", request=request)
    slug = (toolkit or "").lower()
    record = trail.session_recorder(
        LINK_ACTION, session, actor=actor, request=request, details={"toolkit": slug}
    )
    if slug not in session.toolkits:
        message = f"{slug or 'That toolkit'} is not a toolkit of this session; no link was made."
        record(AuditEvent.Outcome.REJECTED, message)
        return LinkResult(message=message, status=400)

    limit = settings.CONNECT_LINKS_PER_HOUR
    with transaction.atomic():
        _lock_staff_user(actor)
        over_limit = links_in_last_hour(actor=actor) >= limit
        if over_limit:
            record(AuditEvent.Outcome.REFUSED, f"Reconnect link limit of {limit} per hour reached.")
        else:
            trail.session_recorder(
                LINK_REQUEST, session, actor=actor, request=request, details={"toolkit": slug}
            )(AuditEvent.Outcome.SUCCESS)
    if over_limit:
        return _limit_reached(actor, limit)

    try:
        rate_limit.draw(request, 1)
    except BudgetSpent as spent:
        return LinkResult(message=spent.message, status=503, retry_after=spent.retry_after)
    try:
        link = composio_seam.create_connect_link(
            session_id=session.session_id,
            toolkit=slug,
            callback_url=settings.CONNECT_LINK_CALLBACK_URL or None,
        )
    except composio_seam.ComposioError as exc:
        outcome = AuditEvent.Outcome.UNKNOWN if exc.outcome_unknown else AuditEvent.Outcome.FAILURE
        _record_quietly(record, outcome, exc.message)
        status = 429 if isinstance(exc, composio_seam.ComposioRateLimited) else 503
        return LinkResult(
            message=f"No link was made: {exc.message}",
            status=status,
            retry_after=getattr(exc, "retry_after", None),
        )
    masked = mcp_url.masked_id_text(link.connected_account_id)
    forget(session)
    try:
        trail.record(
            action=LINK_ACTION,
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            request=request,
            end_user=session.end_user,
            session=session,
            details={
                "toolkit": slug,
                "account": masked,
                "callback": bool(settings.CONNECT_LINK_CALLBACK_URL),
            },
        )
    except DatabaseError:
        logger.exception("connect link for session %s not audited; withheld", session.session_id)
        return LinkResult(
            message="The link could not be written to the audit log, so it is not shown. "
            "Try again in a moment.",
            status=503,
        )
    return LinkResult(url=link.redirect_url, masked_account=masked)


def _record_quietly(record, outcome: str, reason: str) -> None:  # noqa: ANN001
    try:
        record(outcome, reason)
    except DatabaseError:
        logger.exception("connect link failure not audited")


# --- Enabling and disabling an account -----------------------------------------------------------


@dataclass(frozen=True)
class AccountFound:
    account: AccountView | None
    message: str = ""
    retry_after: int | None = None


def find_account(
    *, session: ToolRouterSession, key: str, request: HttpRequest | None = None, fresh: bool = False
) -> AccountFound:
    """The session user's account whose id has fingerprint `key` (from the shared cache unless
    `fresh`), or why there is none."""
    accounts, error, _, retry_after = end_user_accounts(session.end_user, request, fresh=fresh)
    if error:
        return AccountFound(None, f"Could not read the user's accounts: {error}", retry_after)
    for account in accounts:
        if mcp_url.fingerprint(account.id) == key:
            return AccountFound(_view(account))
    return AccountFound(None, "This user has no such connected account (any more).")


@dataclass(frozen=True)
class ChangeResult:
    ok: bool
    message: str
    status: int = 200
    retry_after: int | None = None


def connected_account_set_enabled(
    *,
    session: ToolRouterSession,
    key: str,
    enabled: bool,
    reason: str = "",
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> ChangeResult:
    """Enable or disable one of the session user's accounts at Composio, audited
    (`connected_account.enable` / `.disable`, with the toolkit, the masked id and the reason)."""
    access.require(actor, CHANGE_ACCOUNT, operation="connected_account", request=request)
    found = find_account(session=session, key=key, request=request, fresh=True)
    if found.account is None:
        status = 503 if found.retry_after is not None or "Could not" in found.message else 404
        return ChangeResult(False, found.message, status, found.retry_after)
    view = found.account
    verb = "enable" if enabled else "disable"
    reason = " ".join((reason or "").split())[:300]
    details = {"toolkit": view.account.toolkit, "account": view.masked_id, "reason": reason}
    record = trail.session_recorder(
        f"connected_account.{verb}", session, actor=actor, request=request, details=details
    )
    try:
        rate_limit.draw(request, 1)
    except BudgetSpent as spent:
        return ChangeResult(False, spent.message, 503, spent.retry_after)
    try:
        composio_seam.set_connected_account_enabled(view.account.id, enabled=enabled)
    except composio_seam.ComposioError as exc:
        outcome = AuditEvent.Outcome.UNKNOWN if exc.outcome_unknown else AuditEvent.Outcome.FAILURE
        record(outcome, exc.message)
        if exc.outcome_unknown:
            forget(session)
        return ChangeResult(
            False,
            f"The account was not {verb}d: {exc.message}",
            429 if isinstance(exc, composio_seam.ComposioRateLimited) else 503,
            getattr(exc, "retry_after", None),
        )
    forget(session)
    record(AuditEvent.Outcome.SUCCESS, reason)
    return ChangeResult(
        True,
        f"{view.account.toolkit} account {view.masked_id} of {session.end_user.external_id} "
        f"is {verb}d.",
    )
