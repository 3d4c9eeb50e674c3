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
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


def fingerprint(locator: str) -> str:
    """A short keyed fingerprint of an MCP URL or a session id: safe to log, useless to an
    attacker (12 hex digits of HMAC-SHA-256 under MCP_FINGERPRINT_KEY)."""
    key = settings.MCP_FINGERPRINT_KEY.encode()
    return hmac.new(key, locator.encode(), hashlib.sha256).hexdigest()[:12]


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


# The kind prefix a session id keeps when masked (Composio's `trs_`); anything longer is hidden.
_ID_PREFIX = re.compile(r"[a-z]{1,8}_")
# Composio's session ids in free text (audit reasons, result messages): `trs_` and its tail.
_ID_CHARS = "A-Za-z0-9_-"
SESSION_ID_SHAPE = rf"trs_[{_ID_CHARS}]+"


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
    masked = mask_id(session_id)
    return str(masked) if masked else ""


def mask_ids_in(text: str, known: Iterable[str] = ()) -> str:
    """`text` with every session id in it masked: the `known` ids (and their 12-character short
    forms, masked as the id they shorten) and anything shaped like a Composio session id."""
    if not text:
        return text
    full = {session_id: session_id for session_id in known if session_id}
    short = {session_id[:12]: session_id for session_id in full if len(session_id) > 12}
    names = {**short, **full}
    alternatives = [re.escape(n) for n in sorted(names, key=len, reverse=True)]
    pattern = (
        rf"(?<![{_ID_CHARS}])(?:{'|'.join([*alternatives, SESSION_ID_SHAPE])})(?![{_ID_CHARS}])"
    )
    return re.sub(pattern, lambda m: masked_id_text(names.get(m.group(), m.group())), text)
