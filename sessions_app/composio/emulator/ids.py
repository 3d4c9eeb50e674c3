"""Random identifiers and timestamps in the formats Composio uses."""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime

_ALPHANUM = string.ascii_lowercase + string.digits


def token(n: int = 12) -> str:
    """`n` random lowercase letters and digits (the tail of ids like `trs_...`)."""
    return "".join(secrets.choice(_ALPHANUM) for _ in range(n))


def now_iso() -> str:
    """The current UTC time as Composio writes it: milliseconds and a `Z`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
