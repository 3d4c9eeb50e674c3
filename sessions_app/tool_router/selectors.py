"""Read queries for the support console. Nothing here changes a row."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Prefetch, Q, QuerySet
from django.db.models.functions import Collate, Lower

from sessions_app.models import AuditEvent, EndUser, Toolkit, ToolRouterSession

logger = logging.getLogger(__name__)

QUERY_MAX_LENGTH = 200
HISTORY_LIMIT = 50
# A single token with a digit, "@" or "_" is an identifier (external id, email, session id),
# never a person's name: the name search, the one that cannot use an index, is skipped for it.
_IDENTIFIER = re.compile(r"^\S*[0-9@_]\S*$")
_NAME_WORD_MIN = 2


# --- Lookup ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LookupResult:
    query: str
    users: list[EndUser] = field(default_factory=list)
    has_more: bool = False
    error: str = ""


def _prefix_q(lookup: str, prefix: str) -> Q:
    """`<lookup>` starts with `prefix`, case-sensitively, in a form each database can index.

    PostgreSQL answers LIKE 'x%' from a pattern-ops index. SQLite's LIKE ignores ASCII case and
    so cannot use an ordinary index; a half-open range on the same expression can (and makes the
    match case-sensitive there too).
    """
    condition = Q(**{f"{lookup}__startswith": prefix})
    if connection.vendor != "postgresql" and prefix and ord(prefix[-1]) < 0x10FFFF:
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        condition &= Q(**{f"{lookup}__gte": prefix, f"{lookup}__lt": upper})
    return condition


def _in_index_order(expression: str | Lower) -> Collate | str | Lower:
    """Byte order: the order of the lookup indexes, so a broad prefix reads only `limit` rows.

    PostgreSQL's lookup indexes use the "C" collation (see migration 0003), which answers both
    LIKE 'x%' and this ORDER BY; SQLite's default BINARY collation already is byte order.
    """
    return Collate(expression, "C") if connection.vendor == "postgresql" else expression


def _ids(queryset: QuerySet[EndUser], order: Collate | str | Lower, limit: int) -> list[int]:
    return list(queryset.order_by(order).values_list("pk", flat=True)[: limit + 1])


def _refused_query(query: str) -> LookupResult | None:
    """The answer to a query that cannot be asked (empty, a NUL byte, too long); else None."""
    if not query:
        return LookupResult(query="")
    if "\x00" in query:
        # PostgreSQL text cannot hold a NUL byte: asking would be an error, not "no match".
        return LookupResult(
            query=query.replace("\x00", ""),
            error="That search contains a NUL character, which no user id or name has; remove it.",
        )
    if len(query) > QUERY_MAX_LENGTH:
        return LookupResult(
            query=query[:QUERY_MAX_LENGTH],
            error=f"That search is longer than {QUERY_MAX_LENGTH} characters; shorten it.",
        )
    return None


def _matching_ids(query: str, limit: int) -> list[list[int]]:
    """One indexed query per kind of match (external id, email, name words), each capped at
    `limit + 1` ids."""
    by_external_id = _in_index_order("external_id")
    batches = [
        _ids(EndUser.objects.filter(_prefix_q("external_id", query)), by_external_id, limit),
        _ids(
            EndUser.objects.annotate(email_lower=Lower("email")).filter(
                _prefix_q("email_lower", query.lower())
            ),
            _in_index_order(Lower("email")),
            limit,
        ),
    ]
    words = [w for w in query.split(" ") if len(w) >= _NAME_WORD_MIN]
    if words and not _IDENTIFIER.match(query):
        name_q = Q()
        for word in words:
            name_q &= Q(display_name__istartswith=word) | Q(display_name__icontains=f" {word}")
        batches.append(_ids(EndUser.objects.filter(name_q), by_external_id, limit))
    return batches


def end_user_lookup(*, query: str, limit: int | None = None) -> LookupResult:
    """End users matching what support typed, exact matches first, then by external id.

    Matches: an exact session id (current or past), an external id prefix, an email prefix
    (case-insensitive) and, for queries that are not identifiers, words of the display name
    (every typed word starts a word of the name). Each kind is one indexed query capped at
    `limit + 1` rows, so the number of queries and rows read stays the same however many
    users match.
    """
    query = " ".join(query.split())
    limit = limit or settings.SUPPORT_SEARCH_LIMIT
    refused = _refused_query(query)
    if refused is not None:
        return refused
    by_session = {
        end_user_id: (session_id, status)
        for end_user_id, session_id, status in ToolRouterSession.objects.filter(
            session_id=query
        ).values_list("end_user_id", "session_id", "status")[:1]
    }
    exact = set(by_session)
    found: set[int] = set(exact)
    more = False
    for batch in _matching_ids(query, limit):
        more = more or len(batch) > limit
        found.update(batch)

    users = list(
        EndUser.objects.filter(pk__in=found).prefetch_related(
            Prefetch(
                "sessions",
                queryset=ToolRouterSession.objects.filter(status=ToolRouterSession.Status.ACTIVE),
                to_attr="active_sessions",
            )
        )
    )
    # Python compares strings by code point: the same byte order as the indexes.
    users.sort(key=lambda u: (u.pk not in exact and u.external_id != query, u.external_id))
    for user in users:
        user.active_session = user.active_sessions[0] if user.active_sessions else None
        matched = by_session.get(user.pk)
        user.matched_session_id = matched[0] if matched else ""
        user.matched_session_status = matched[1] if matched else ""
    return LookupResult(
        query=query, users=users[:limit], has_more=more or len(users) > limit, error=""
    )


def active_session(*, end_user: EndUser) -> ToolRouterSession | None:
    """The end user's active session, if any."""
    return ToolRouterSession.objects.filter(
        end_user=end_user, status=ToolRouterSession.Status.ACTIVE
    ).first()


def end_user_row(*, end_user: EndUser) -> EndUser:
    """The end user as a result row shows it (with `active_session`)."""
    end_user.active_session = end_user.sessions.filter(
        status=ToolRouterSession.Status.ACTIVE
    ).first()
    end_user.matched_session_id = end_user.matched_session_status = ""
    return end_user


# --- The user card -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolkitLabel:
    slug: str
    name: str


@dataclass(frozen=True)
class UserCard:
    end_user: EndUser
    active: ToolRouterSession | None
    history: list[ToolRouterSession]
    history_truncated: bool
    toolkits: list[ToolkitLabel]
    deleted_by: dict[int, str]


def end_user_card(*, end_user: EndUser) -> UserCard:
    """What support needs about one end user, in a fixed number of queries."""
    sessions = ToolRouterSession.objects.select_related("created_by").filter(end_user=end_user)
    active = sessions.filter(status=ToolRouterSession.Status.ACTIVE).first()
    history = list(
        sessions.exclude(status=ToolRouterSession.Status.ACTIVE)
        .select_related("replaced_by__created_by")
        .order_by("-created_at", "-pk")[: HISTORY_LIMIT + 1]
    )
    truncated = len(history) > HISTORY_LIMIT
    history = history[:HISTORY_LIMIT]

    toolkits: list[ToolkitLabel] = []
    if active is not None:
        names = dict(Toolkit.objects.filter(slug__in=active.toolkits).values_list("slug", "name"))
        toolkits = [ToolkitLabel(slug=s, name=names.get(s, s)) for s in active.toolkits]

    deleted = [s.pk for s in history if s.status == ToolRouterSession.Status.DELETED]
    deleted_by: dict[int, str] = {}
    if deleted:
        for session_id, username in AuditEvent.objects.filter(
            action="session.delete",
            outcome=AuditEvent.Outcome.SUCCESS,
            session_id__in=deleted,
        ).values_list("session_id", "actor_username"):
            deleted_by.setdefault(session_id, username)
    for session in history:
        session.deleted_by_username = deleted_by.get(session.pk, "")
    return UserCard(
        end_user=end_user,
        active=active,
        history=history,
        history_truncated=truncated,
        toolkits=toolkits,
        deleted_by=deleted_by,
    )


# --- MCP URLs ----------------------------------------------------------------------------------
