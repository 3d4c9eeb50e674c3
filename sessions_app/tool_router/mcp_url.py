"""The one masked form of a locator: what every page, list, export and audit event may show.

An MCP URL is a locator that Composio honours only with the project's API key; it is still
treated as sensitive, so outside an audited reveal only its scheme, host and a keyed
fingerprint are shown, always in the same format (`MaskedUrl.__str__`).

A session id rebuilds the MCP URL (`<host>/tool_router/<session id>/mcp`), so it is a locator
too: whoever may not reveal the URL sees it as `MaskedId` (its kind prefix, `…`, and the same
keyed fingerprint over the id), in the same format. Who sees which is decided in
`tool_router.locators`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings


def fingerprint(locator: str) -> str:
    """A short keyed fingerprint of an MCP URL or a session id: safe to log, useless to an
    attacker (12 hex digits of HMAC-SHA-256 under MCP_FINGERPRINT_KEY)."""
    return _keyed(settings.MCP_FINGERPRINT_KEY, locator)


@lru_cache(maxsize=4096)
def _keyed(key: str, locator: str) -> str:
    # Cached: an export fingerprints the same session ids row after row.
    return hmac.new(key.encode(), locator.encode(), hashlib.sha256).hexdigest()[:12]


@dataclass(frozen=True)
class MaskedUrl:
    scheme: str
    host: str
    fingerprint: str

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}/…#{self.fingerprint}"


def mask(url: str) -> MaskedUrl | None:
    """Scheme, host and fingerprint of `url` (None for no URL): enough to tell URLs apart,
    useless to replay."""
    if not url:
        return None
    parts = urlsplit(url)
    return MaskedUrl(
        scheme=parts.scheme or "?",
        host=parts.netloc.rsplit("@", 1)[-1] or "?",
        fingerprint=fingerprint(url),
    )


def masked_text(url: str) -> str:
    """`mask(url)` as text, blank for no URL: for lists, exports and forms."""
    masked = mask(url)
    return str(masked) if masked else ""


# The short form of a session id: its first 12 characters (Composio's `trs_` and 8 more), enough
# to tell sessions apart on a page; the support lookup finds a session by it (`short_id`).
SHORT_ID_LENGTH = 12


def short_id(session_id: str) -> str:
    """The one short form of a session id, wherever one is shown shortened (lists, result
    messages, job pages, the command line): `trs_cpnfo4nj`."""
    return session_id[:SHORT_ID_LENGTH]


# The kind prefix a session id keeps when masked (Composio's `trs_`); anything longer is hidden.
_ID_PREFIX = re.compile(r"[a-z]{1,8}_")
# Composio's session ids in free text (audit reasons, result messages): `trs_` and its tail, a
# whole run of id characters.
_ID_CHARS = "A-Za-z0-9_-"
_ID_RUN = re.compile(rf"[{_ID_CHARS}]+")
# The runs worth a look when every known id has an underscore (Composio's all do): most words
# have none, so most texts need no callback at all.
_UNDERSCORED_RUN = re.compile(rf"[{_ID_CHARS}]*_[{_ID_CHARS}]*")
_COMPOSIO_ID = re.compile(r"trs_[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class MaskedId:
    prefix: str
    fingerprint: str

    def __str__(self) -> str:
        return f"{self.prefix}…#{self.fingerprint}"


def mask_id(session_id: str) -> MaskedId | None:
    """The kind prefix (`trs_`) and fingerprint of a session id (None for no id): enough to tell
    sessions apart and to match them across pages and exports, useless to rebuild the URL."""
    if not session_id:
        return None
    prefix = _ID_PREFIX.match(session_id)
    return MaskedId(prefix=prefix.group() if prefix else "", fingerprint=fingerprint(session_id))


def masked_id_text(session_id: str) -> str:
    """`mask_id(session_id)` as text, blank for no id: for lists, exports and forms."""
    return _masked_id_text(settings.MCP_FINGERPRINT_KEY, session_id)


@lru_cache(maxsize=4096)
def _masked_id_text(key: str, session_id: str) -> str:
    # Keyed by the fingerprint key too: the cache never outlives a key change.
    masked = mask_id(session_id)
    return str(masked) if masked else ""


def mask_ids_in(text: str, known: Iterable[str] = ()) -> str:
    """`text` with every session id in it masked: the `known` ids (and their short forms,
    `short_id`, masked as the id they shorten) and any whole run shaped like a Composio
    session id."""
    return id_masker(known)(text)


def id_masker(known: Iterable[str] = ()) -> Callable[[str], str]:
    """`mask_ids_in` for these `known` ids, made once for many texts (an event's reason and
    details): one precompiled pass over the runs of id characters of each text."""
    full = {session_id: session_id for session_id in known if session_id}
    names = {**{short_id(i): i for i in full if len(i) > SHORT_ID_LENGTH}, **full}

    def masked(match: re.Match[str]) -> str:
        found = match.group()
        if found in names:
            return masked_id_text(names[found])
        return masked_id_text(found) if _COMPOSIO_ID.fullmatch(found) else found

    pattern = _UNDERSCORED_RUN if all("_" in n for n in names) else _ID_RUN
    # Known ids with other characters (not Composio's) are matched as they are, longest first.
    odd = sorted((n for n in names if not _ID_RUN.fullmatch(n)), key=len, reverse=True)
    if odd:
        names_first = "|".join(re.escape(n) for n in odd)
        pattern = re.compile(
            rf"(?<![{_ID_CHARS}])(?:{names_first})(?![{_ID_CHARS}])|{pattern.pattern}"
        )

    def mask(text: str) -> str:
        return pattern.sub(masked, text) if text else text

    return mask
