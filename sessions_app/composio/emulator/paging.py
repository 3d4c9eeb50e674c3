"""Query-string readers and Composio's cursor paging."""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from .errors import ApiError

Query = dict[str, list[str]]


def query_first(query: Query, key: str) -> str | None:
    """The first value of `key`, or None when it is absent."""
    values = query.get(key)
    return values[0] if values else None


def query_csv(query: Query, key: str) -> list[str] | None:
    """Every comma-separated value of `key` (repeated keys included), or None when absent."""
    values = query.get(key)
    if not values:
        return None
    return [s.strip() for v in values for s in v.split(",") if s.strip()]


def query_bool(query: Query, key: str) -> bool:
    """`key` as a boolean (absent or empty is False). The request's contract (`contract.py`) has
    refused a value that is not one; these are the true spellings pydantic accepts."""
    value = query_first(query, key)
    return value is not None and value.strip().lower() in ("1", "true", "t", "yes", "y", "on")


def encode_cursor(page: int, limit: int) -> str:
    """The opaque `next_cursor` for `page` at `limit` items a page."""
    raw = json.dumps({"page": page, "limit": limit}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(page, limit) from a cursor `encode_cursor` made; a 400 for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        page, limit = int(data["page"]), int(data["limit"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise ApiError(400, "Invalid cursor", errors=["Error in query.cursor: Invalid"]) from exc
    if page < 1 or limit < 1:
        raise ApiError(400, "Invalid cursor", errors=["Error in query.cursor: Invalid"])
    return page, limit


def parse_limit(raw: str, max_limit: int) -> int:
    """`raw` as a whole number from 1 to `max_limit`; a 400 otherwise."""
    try:
        number = float(raw)
    except ValueError as exc:
        raise ApiError(
            400, "Validation error", errors=["Error in query.limit: Expected number"]
        ) from exc
    if not math.isfinite(number) or number != int(number) or number < 1:
        raise ApiError(
            400, "Validation error", errors=["Error in query.limit: Expected positive integer"]
        )
    if number > max_limit:
        raise ApiError(
            400,
            "Validation error",
            errors=[f"Error in query.limit: Number must be less than or equal to {max_limit}"],
        )
    return int(number)


def paginate(
    items: list[dict[str, Any]],
    query: Query,
    *,
    default_limit: int,
    max_limit: int,
) -> dict[str, Any]:
    """One page of `items` as Composio's list body, read from `limit` and `cursor`."""
    raw_limit = query_first(query, "limit")
    cursor = query_first(query, "cursor")
    page, limit = 1, default_limit
    if cursor:
        page, limit = decode_cursor(cursor)
    if raw_limit not in (None, ""):
        limit = parse_limit(raw_limit, max_limit)
    limit = min(limit, max_limit)
    total = len(items)
    start = (page - 1) * limit
    chunk = items[start : start + limit]
    has_more = start + limit < total
    return {
        "items": chunk,
        "next_cursor": encode_cursor(page + 1, limit) if has_more else None,
        "total_items": total,
        "total_pages": math.ceil(total / limit),
        "current_page": page,
    }
