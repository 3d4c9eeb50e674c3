"""What the console shows of Composio's execution logs: every value that looks like a secret
replaced by "[redacted]" before anything renders it.

A log entry carries what the user's agent sent and got back (tool arguments, responses, errors),
so it may hold anything: OAuth tokens, API keys, Authorization headers, passwords, the project's
own Composio API key, MCP URLs. Redaction is by key (a key that names a secret hides its whole
value) and by shape (a string that looks like a token, a bearer or basic credential, a URL with
a secret in its query, an MCP URL, or one of the configured keys, anywhere inside a longer text).
It errs towards hiding: an id that happens to look like a token is hidden too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings

REDACTED = "[redacted]"

# A key naming a secret: its whole value goes (whatever its type).
_SECRET_KEY = re.compile(
    r"(token|secret|passw|pwd|api[-_]?key|apikey|authori[sz]ation|^auth$|cookie|credential(?!_source)"
    r"|private[-_]?key|signature|session[-_]?key|x-api-key|mcp[-_]?url|^headers?$|bearer)",
    re.IGNORECASE,
)

# Shapes of secrets inside any string.
_SHAPES = [
    # Authorization header lines and scheme credentials.
    re.compile(r"(?i)\b(authorization|proxy-authorization|x-api-key|cookie)\s*[:=]\s*[^\r\n,;]+"),
    re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9\-._~+/]{8,}=*"),
    # JSON web tokens.
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    # Well-known token prefixes (GitHub, Slack, OpenAI/Stripe-style, Google, AWS, GitLab,
    # Composio, Linear, Notion).
    re.compile(
        r"\b(gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{8,}"
        r"|sk[-_](?:live_|test_|proj-)?[A-Za-z0-9]{16,}|rk_(?:live|test)_[A-Za-z0-9]{16,}"
        r"|ya29\.[A-Za-z0-9_-]{10,}|AIza[A-Za-z0-9_-]{30,}|AKIA[0-9A-Z]{16}|glpat-[A-Za-z0-9_-]{16,}"
        r"|ak_[A-Za-z0-9_-]{12,}|lin_(?:api|oauth)_[A-Za-z0-9]{16,}|(?:ntn|secret)_[A-Za-z0-9]{16,})"
    ),
    # Secrets in URL query strings or key=value text.
    re.compile(
        r"(?i)\b((?:access_|refresh_|id_)?token|api[_-]?key|key|secret|client_secret|password"
        r"|sig|signature|code)=[^&\s\"']+"
    ),
    # MCP URLs (a Tool Router session's URL names the session to use).
    re.compile(
        r"(?i)\bhttps?://[^\s\"']*/(?:tool_router|mcp)/[^\s\"']*|\bhttps?://[^\s\"']*/mcp\b"
    ),
    # Long runs of letters and digits with both (opaque tokens without a known prefix).
    re.compile(
        r"\b(?=[A-Za-z0-9_\-]{32,}\b)(?=[A-Za-z0-9_\-]*[0-9])(?=[A-Za-z0-9_\-]*[A-Za-z])"
        r"[A-Za-z0-9_\-]{32,}\b"
    ),
]


def _configured_secrets() -> list[str]:
    return [
        s
        for s in (settings.COMPOSIO_API_KEY, settings.COMPOSIO_EMULATOR_API_KEY)
        if isinstance(s, str) and len(s) >= 4
    ]


def redact_text(text: str) -> str:
    """`text` with every secret-looking part replaced by "[redacted]"."""
    for secret in _configured_secrets():
        text = text.replace(secret, REDACTED)
    for shape in _SHAPES:
        text = shape.sub(REDACTED, text)
    return text


def redact(value: Any) -> Any:
    """`value` (JSON-like: dicts, lists, strings, numbers) with secrets redacted, by key and by
    shape, at any depth. Keys are kept (redacted by shape too); numbers and booleans stay."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = redact_text(str(key))
            out[name] = (
                REDACTED
                if _SECRET_KEY.search(str(key)) and item not in (None, "")
                else redact(item)
            )
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(str(value))
