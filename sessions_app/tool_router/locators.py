"""Who sees a session id in full: the one rule every page, list and message asks.

A session id rebuilds the MCP URL (`<host>/tool_router/<session id>/mcp`), so only the staff
who may reveal the MCP URL (`sessions_app.reveal_mcp_url`: Support, Session admin, superusers)
see it; everyone else sees its masked form (`mcp_url.MaskedId`, `trs_…#<fingerprint>`). CSV
exports leave the console, so they are always masked (`mcp_url.masked_id_text`,
`mcp_url.mask_ids_in`), whoever downloads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sessions_app import access
from sessions_app.tool_router import mcp_url

REVEAL_PERMISSION = "sessions_app.reveal_mcp_url"

# The model fields that hold a locator (a session id or an MCP URL), as (model label, field):
# the admin searches them only by exact value for whoever may not see them.
LOCATOR_FIELDS = frozenset(
    {
        ("sessions_app.toolroutersession", "session_id"),
        ("sessions_app.toolroutersession", "mcp_url"),
        ("sessions_app.sessionoperation", "remote_session_id"),
        ("sessions_app.auditevent", "session_ref"),
    }
)

# The audit details keys that name a session id other than the event's own.
_DETAIL_IDS = ("replaces", "remote_session_id")


def may_see_ids(user: access.Actor) -> bool:
    """Whether `user` sees session ids in full: a signed-in user who may reveal MCP URLs."""
    return user is not None and user.is_authenticated and access.may(user, REVEAL_PERMISSION)


def locator(session_id: str, user: access.Actor, *, short: bool = False) -> str:
    """The session id as `user` may see it: in full (its short form, `mcp_url.short_id`, if
    `short`), or masked."""
    return shown(session_id, may_see_ids(user), short=short)


def shown(session_id: str, full: bool, *, short: bool = False) -> str:
    """The session id for a viewer who may (`full`, from `may_see_ids`) or may not see it: for
    lists, which ask `may_see_ids` once."""
    if full:
        return mcp_url.short_id(session_id) if short else session_id
    return mcp_url.masked_id_text(session_id)


def locators_in(text: str, user: access.Actor, known: Iterable[str] = ()) -> str:
    """Free text (a reason, a message) as `user` may see it: unchanged, or every session id in
    it masked (the `known` ids and anything shaped like one)."""
    return shown_in(text, may_see_ids(user), known)


def shown_in(text: str, full: bool, known: Iterable[str] = ()) -> str:
    """Free text for a viewer who may (`full`, from `may_see_ids`) or may not see session ids:
    for lists, which ask `may_see_ids` once."""
    return text if full else mcp_url.mask_ids_in(text, known)


def event_ids(session_ref: str, details: Mapping[str, Any] | None) -> list[str]:
    """The session ids an audit event names: its own and those its details name."""
    named = [str((details or {}).get(key) or "") for key in _DETAIL_IDS]
    return [i for i in [session_ref, *named] if i]


def masked_details(details: Any, known: Iterable[str]) -> Any:
    """An audit event's details with every session id in their text masked (for exports)."""
    return _masked(details, mcp_url.id_masker(known))


def _masked(value: Any, mask: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {key: _masked(item, mask) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item, mask) for item in value]
    return value


def details_for(details: Any, user: access.Actor, known: Iterable[str]) -> Any:
    """An audit event's details as `user` may see them."""
    return details if may_see_ids(user) else masked_details(details, known)
