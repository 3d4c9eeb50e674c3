"""Read queries for the support console. Nothing here changes a row."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    Aggregate,
    Case,
    F,
    FilteredRelation,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Collate, Lower
from django.urls import reverse

from sessions_app.models import AuditEvent, EndUser, SessionToolkit, ToolRouterSession
from sessions_app.tool_router import mcp_url
from sessions_app.tool_router.prepared import PreparedQuery

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


def _upper_bound(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix` (None when there is none
    to write: an empty prefix, or one ending in the last code point)."""
    if prefix and ord(prefix[-1]) < 0x10FFFF:
        return prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return None


def _prefix_q(lookup: str, prefix: str, upper: str | None) -> Q:
    """`<lookup>` starts with `prefix`, case-sensitively, in a form each database can index.

    PostgreSQL answers LIKE 'x%' from a pattern-ops index. SQLite's LIKE ignores ASCII case and
    so cannot use an ordinary index; a half-open range up to `upper` (`_upper_bound(prefix)`)
    on the same expression can (and makes the match case-sensitive there too).
    """
    condition = Q(**{f"{lookup}__startswith": prefix})
    if connection.vendor != "postgresql" and upper is not None:
        condition &= Q(**{f"{lookup}__gte": prefix, f"{lookup}__lt": upper})
    return condition


def _in_index_order(expression: str | Lower) -> Collate | str | Lower:
    """Byte order: the order of the lookup indexes, so a broad prefix reads only `limit` rows.

    PostgreSQL's lookup indexes use the "C" collation (see migration 0003), which answers both
    LIKE 'x%' and this ORDER BY; SQLite's default BINARY collation already is byte order.
    """
    return Collate(expression, "C") if connection.vendor == "postgresql" else expression


def _ids(queryset: QuerySet[EndUser], order: Collate | str | Lower, limit: int) -> QuerySet:
    """The first `limit + 1` matching ids in index order, as a subquery (not run here)."""
    return queryset.order_by(order).values("pk")[: limit + 1]


def _union_sql(batches: list[QuerySet]) -> RawSQL:
    """The ids of every batch as one `UNION ALL` subquery, each batch its own derived table (so
    its ORDER BY ... LIMIT stays inside it: SQLite refuses LIMIT in a compound's arm). Used as
    `pk IN (...)`, PostgreSQL and SQLite read each batch from its index and the users by pk."""
    parts, params = [], []
    for batch in batches:
        sql, batch_params = batch.query.sql_with_params()
        parts.append(f"SELECT * FROM ({sql}) AS b{len(parts)}")
        params.extend(batch_params)
    return RawSQL(" UNION ALL ".join(parts), params)


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


def _prefix_values(name: str, prefix: str) -> dict[str, str]:
    """A prefix and, where there is one, its upper bound, as a prepared query's values."""
    upper = _upper_bound(prefix)
    return {name: prefix} if upper is None else {name: prefix, f"{name}_upper": upper}


@dataclass(frozen=True)
class _LookupShape:
    """What a lookup's SQL depends on, beside the values searched for."""

    limit: int
    words: int  # how many name words it matches (0: no name search)
    named: str  # the sessions it names: "" none, "exact" one id, "prefix" ids starting so


def _named_sessions_queryset(
    shape: _LookupShape, *, q: str, q_upper: str | None = None
) -> QuerySet:
    """The sessions a query names (`_LookupShape.named`), in index order, at most `limit + 1`."""
    if shape.named == "exact":
        named = ToolRouterSession.objects.filter(session_id=q)
    else:
        named = ToolRouterSession.objects.filter(_prefix_q("session_id", q, q_upper))
    return named.order_by(_in_index_order("session_id"))[: shape.limit + 1]


def _build_named_sessions(shape: _LookupShape, *, q: str, q_upper: str | None = None) -> QuerySet:
    return (
        _named_sessions_queryset(shape, q=q, q_upper=q_upper)
        .annotate(deleted_by_username=_deleted_by_subquery())
        .values(
            "end_user_id",
            "session_id",
            "status",
            "superseded_at",
            "deleted_at",
            "deleted_by_username",
            replaced_by_session_id=F("replaced_by__session_id"),
            replaced_by_creator=F(f"replaced_by__created_by__{get_user_model().USERNAME_FIELD}"),
        )
    )


def _build_lookup_users(
    shape: _LookupShape,
    *,
    q: str,
    q_upper: str | None = None,
    email: str,
    email_upper: str | None = None,
    **words: str,
) -> QuerySet:
    """The users a lookup shows: one indexed subquery per kind of match (external id, email,
    name words, the users of the sessions it names), each capped at `limit + 1` ids, in one
    `UNION ALL`; each user with their active session from a join."""
    limit = shape.limit
    by_external_id = _in_index_order("external_id")
    batches = [
        _ids(EndUser.objects.filter(_prefix_q("external_id", q, q_upper)), by_external_id, limit),
        _ids(
            EndUser.objects.annotate(email_lower=Lower("email")).filter(
                _prefix_q("email_lower", email, email_upper)
            ),
            _in_index_order(Lower("email")),
            limit,
        ),
    ]
    if shape.words:
        name_q = Q()
        for i in range(shape.words):
            word = words[f"word{i}"]
            name_q &= Q(display_name__istartswith=word) | Q(display_name__icontains=f" {word}")
        batches.append(_ids(EndUser.objects.filter(name_q), by_external_id, limit))
    if shape.named:
        batches.append(_named_sessions_queryset(shape, q=q, q_upper=q_upper).values("end_user_id"))
    return EndUser.objects.filter(pk__in=_union_sql(batches)).annotate(
        active=FilteredRelation(
            "sessions", condition=Q(sessions__status=ToolRouterSession.Status.ACTIVE)
        ),
        active_pk=F("active__pk"),
        active_session_id=F("active__session_id"),
        active_stale_since=F("active__stale_since"),
    )


_named_sessions = PreparedQuery(_build_named_sessions)
_lookup_users = PreparedQuery(_build_lookup_users)


@dataclass(frozen=True)
class MatchedSession:
    """The session a lookup by session id found, and for a past one what ended it: the session
    that replaced it (a refresh, by whom, when) or its deletion (when, by whom)."""

    session_id: str
    status: str
    ended_at: datetime | None = None
    ended_by: str = ""
    replaced_by: str = ""  # the session id of the session that replaced it

    @property
    def past(self) -> bool:
        return self.status != ToolRouterSession.Status.ACTIVE


@dataclass(frozen=True, slots=True)
class ActiveRow:
    """A result row's active session: what the row shows of it (its id, whether it went stale),
    read with the user in the same query. A plain value, not a `ToolRouterSession`: building a
    model instance per row cost more than the rest of the row's Python."""

    pk: int
    session_id: str
    stale_since: datetime | None = None


def _named_kind(query: str) -> str:
    """Which sessions a query names: "" for words and emails (a session id is one run of
    letters, digits, `_` and `-`, `trs_...`), "exact" for one shorter than a short id
    (`mcp_url.short_id`), else "prefix": every session whose id starts with it."""
    if " " in query or "@" in query:
        return ""
    return "exact" if len(query) < mcp_url.SHORT_ID_LENGTH else "prefix"


def _matched(sessions: list[dict[str, Any]]) -> dict[int, MatchedSession]:
    """Each end user's session among `sessions` (its first), as the lookup shows it."""
    matched: dict[int, MatchedSession] = {}
    for session in sessions:
        if session["end_user_id"] in matched:
            continue
        if session["status"] == ToolRouterSession.Status.DELETED:
            ended_at, ended_by = session["deleted_at"], session["deleted_by_username"]
        else:
            ended_at, ended_by = session["superseded_at"], session["replaced_by_creator"]
        matched[session["end_user_id"]] = MatchedSession(
            session_id=session["session_id"],
            status=session["status"],
            ended_at=ended_at,
            ended_by=ended_by or "",
            replaced_by=session["replaced_by_session_id"] or "",
        )
    return matched


def end_user_lookup(*, query: str, limit: int | None = None) -> LookupResult:
    """End users matching what support typed, exact matches first, then by external id.

    Matches: a session id (current or past), whole or its short form (`mcp_url.short_id`, or
    any longer start of it); an external id prefix; an email prefix (case-insensitive); and, for
    queries that are not identifiers, words of the display name (every typed word starts a word
    of the name). Each kind is one indexed query capped at `limit + 1` rows, so the number of
    queries and rows read stays the same however many users match. A user found by a past
    session carries what ended it (`matched_session`: replaced by which session, when, by whom).
    Both queries are prepared (`prepared.PreparedQuery`): compiled once per shape and process.
    """
    query = " ".join(query.split())
    limit = limit or settings.SUPPORT_SEARCH_LIMIT
    refused = _refused_query(query)
    if refused is not None:
        return refused
    words = [w for w in query.split(" ") if len(w) >= _NAME_WORD_MIN]
    if _IDENTIFIER.match(query):
        words = []
    named_kind = _named_kind(query)
    shape = _LookupShape(limit=limit, words=len(words), named=named_kind)
    named: list[dict[str, Any]] = []
    if named_kind:
        session_values = {"q": query} if named_kind == "exact" else _prefix_values("q", query)
        named = _named_sessions.run(shape, **session_values)
        named.sort(key=lambda s: s["session_id"] != query)
    by_session = _matched(named)
    exact = set(by_session)
    more = len(named) > limit
    # One query for the users: every batch's ids in one indexed subquery, and their active
    # session from a join. A batch capped at `limit + 1` that is full makes more than `limit`
    # users, so "there are more" needs no word from each batch. The sessions' batch runs only
    # when they named a user.
    users = _lookup_users.run(
        shape if named else replace(shape, named=""),
        **_prefix_values("q", query),
        **_prefix_values("email", query.lower()),
        **{f"word{i}": word for i, word in enumerate(words)},
    )
    # Python compares strings by code point: the same byte order as the indexes.
    users.sort(key=lambda u: (u.pk not in exact and u.external_id != query, u.external_id))
    urls = RowUrls()
    for user in users:
        user.active_session = (
            ActiveRow(user.active_pk, user.active_session_id, user.active_stale_since)
            if user.active_pk is not None
            else None
        )
        matched = by_session.get(user.pk)
        user.matched_session = matched
        user.matched_session_id = matched.session_id if matched else ""
        user.matched_session_status = matched.status if matched else ""
        urls.attach(user)
    return LookupResult(
        query=query, users=users[:limit], has_more=more or len(users) > limit, error=""
    )


class RowUrls:
    """A result row's links (its card, itself), built by substituting the user's public id into
    URLs reversed once, not by `{% url %}` three times a row."""

    _PLACEHOLDER = UUID(int=0)

    def __init__(self) -> None:
        self.card = reverse("sessions_app:support_user_card", args=[self._PLACEHOLDER])
        self.row = reverse("sessions_app:support_user_row", args=[self._PLACEHOLDER])

    def attach(self, user: EndUser) -> None:
        public_id, placeholder = str(user.public_id), str(self._PLACEHOLDER)
        user.card_url = self.card.replace(placeholder, public_id)
        user.row_url = self.row.replace(placeholder, public_id)


def active_session(*, end_user: EndUser) -> ToolRouterSession | None:
    """The end user's active session, if any."""
    return ToolRouterSession.objects.filter(
        end_user=end_user, status=ToolRouterSession.Status.ACTIVE
    ).first()


def end_user_row(*, end_user: EndUser) -> EndUser:
    """The end user as a result row shows it (with `active_session`, as the lookup's rows)."""
    active = (
        end_user.sessions.filter(status=ToolRouterSession.Status.ACTIVE)
        .values_list("pk", "session_id", "stale_since")
        .first()
    )
    end_user.active_session = ActiveRow(*active) if active else None
    end_user.matched_session = None
    end_user.matched_session_id = end_user.matched_session_status = ""
    RowUrls().attach(end_user)
    return end_user


def _deleted_by_subquery(session: str = "pk") -> Subquery:
    """Who deleted the outer session (its key at `session`; from the audit trail), as a column of
    its query."""
    return Subquery(
        AuditEvent.objects.filter(
            action="session.delete",
            outcome=AuditEvent.Outcome.SUCCESS,
            session_id=OuterRef(session),
        )
        .order_by("-sequence")
        .values("actor_username")[:1]
    )


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


class _JsonPairs(Aggregate):
    """The grouped rows' [[a, b], ...] as JSON text, on PostgreSQL and SQLite."""

    function = "JSON_GROUP_ARRAY"
    template = "%(function)s(JSON_ARRAY(%(expressions)s))"
    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            function="JSON_AGG",
            template="%(function)s(JSON_BUILD_ARRAY(%(expressions)s))::text",
            **extra,
        )


def _toolkit_names(path: str = "") -> Case:
    """The active session's toolkits as JSON [[slug, name], ...] (NULL for the other sessions;
    `path` leads from the outer query to the session, e.g. "card_session__")."""
    names = (
        SessionToolkit.objects.filter(session=OuterRef(f"{path}pk"))
        .order_by()
        .values("session")
        .annotate(pairs=_JsonPairs("toolkit__slug", "toolkit__name"))
        .values("pairs")
    )
    return Case(
        When(**{f"{path}status": ToolRouterSession.Status.ACTIVE}, then=Subquery(names)),
        default=Value(None),
        output_field=TextField(),
    )


def _card_sessions(sessions: QuerySet[ToolRouterSession]) -> list[ToolRouterSession]:
    """The sessions a card shows: the active one first, then the newest others (at most
    `HISTORY_LIMIT + 1`, to tell a truncated history), each with who created, replaced and
    deleted it, and the active one with its toolkits' names, in one query."""
    return list(
        sessions.select_related("created_by", "replaced_by__created_by")
        .annotate(
            is_active=Case(
                When(status=ToolRouterSession.Status.ACTIVE, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
            deleted_by_username=_deleted_by_subquery(),
            toolkit_names=_toolkit_names(),
        )
        .order_by("is_active", "-created_at", "-pk")[: HISTORY_LIMIT + 2]
    )


def _build_card(history_limit: int, *, public_id: UUID) -> QuerySet:
    """The end user with this public id joined to each of the sessions a card shows (see
    `_card_sessions`), or one row with none for an end user who never had one."""
    path = "card_session__"
    return (
        EndUser.objects.filter(public_id=public_id)
        .annotate(card_session=FilteredRelation("sessions"))
        .select_related(
            "card_session",
            "card_session__created_by",
            "card_session__replaced_by__created_by",
        )
        .annotate(
            card_is_active=Case(
                When(card_session__status=ToolRouterSession.Status.ACTIVE, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
            card_deleted_by=_deleted_by_subquery(f"{path}pk"),
            card_toolkit_names=_toolkit_names(path),
        )
        .order_by("card_is_active", "-card_session__created_at", "-card_session__pk")[
            : history_limit + 2
        ]
    )


_card_rows = PreparedQuery(_build_card)


def end_user_card_for(*, public_id: UUID) -> UserCard | None:
    """`end_user_card` of the end user with this public id (None if there is none), in one
    prepared query (`_build_card`)."""
    rows = _card_rows.run(HISTORY_LIMIT, public_id=public_id)
    if not rows:
        return None
    sessions = []
    for row in rows:
        session = getattr(row, "card_session", None)  # unset when the join found none
        if session is None:
            continue
        session.end_user = rows[0]
        session.deleted_by_username = row.card_deleted_by
        session.toolkit_names = row.card_toolkit_names
        sessions.append(session)
    return _card(rows[0], sessions)


def end_user_card(*, end_user: EndUser) -> UserCard:
    """What support needs about one end user, in a fixed number of queries: its sessions (the
    active one first, then the newest `HISTORY_LIMIT` others, each with who created, replaced and
    deleted it, and the active one's toolkit names) in one."""
    return _card(end_user, _card_sessions(ToolRouterSession.objects.filter(end_user=end_user)))


def _card(end_user: EndUser, sessions: list[ToolRouterSession]) -> UserCard:
    active = None
    if sessions and sessions[0].status == ToolRouterSession.Status.ACTIVE:
        active = sessions.pop(0)
    history = sessions[: HISTORY_LIMIT + 1]
    truncated = len(history) > HISTORY_LIMIT
    history = history[:HISTORY_LIMIT]

    toolkits: list[ToolkitLabel] = []
    if active is not None:
        names = dict(json.loads(active.toolkit_names or "[]"))
        toolkits = [ToolkitLabel(slug=s, name=names.get(s, s)) for s in active.toolkits]

    deleted_by: dict[int, str] = {}
    for session in history:
        session.deleted_by_username = session.deleted_by_username or ""
        if session.status == ToolRouterSession.Status.DELETED and session.deleted_by_username:
            deleted_by[session.pk] = session.deleted_by_username
    return UserCard(
        end_user=end_user,
        active=active,
        history=history,
        history_truncated=truncated,
        toolkits=toolkits,
        deleted_by=deleted_by,
    )


# --- MCP URLs ----------------------------------------------------------------------------------
