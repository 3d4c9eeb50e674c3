"""The MCP URL's one masked form: what every page, list, export and audit event may show.

An MCP URL is a locator that Composio honours only with the project's API key; it is still
treated as sensitive, so outside an audited reveal only its scheme, host and a keyed
fingerprint are shown, always in the same format (`MaskedUrl.__str__`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


def fingerprint(url: str) -> str:
    """A short keyed fingerprint of an MCP URL: safe to log, useless to an attacker."""
    key = settings.MCP_FINGERPRINT_KEY.encode()
    return hmac.new(key, url.encode(), hashlib.sha256).hexdigest()[:12]


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
