"""Tool execution logs: written by `execution.py`, searched by `POST /logs/tool_execution`, read
by `GET /logs/tool_execution/{id}`. Persisted as kind `execution_log`, newest first."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError, validation_error
from .http import Response
from .ids import token
from .paging import decode_cursor, encode_cursor
from .state import EmulatorState

LOGS_DEFAULT_LIMIT = 20
LOGS_MAX_LIMIT = 100  # composio_client's LogCreateToolExecutionBody: limit 1..100
LOG_FIELDS = (
    "tool_slug",
    "toolkit_slug",
    "connected_account_id",
    "auth_config_id",
    "status",
    "user_id",
    "session_id",
    "sandbox_id",
    "request_id",
    "log_id",
)
LOG_OPERATORS = ("==", "!=", "contains", "not_contains")
_LIST_KEYS = (
    "id",
    "timestamp",
    "type",
    "status",
    "level",
    "message",
    "metadata",
    "metrics",
    "parent",
)


class LogsMixin(EmulatorState):
    """The execution log: one entry a tool execution."""

    @property
    def execution_logs(self) -> dict[str, dict[str, Any]]:
        """{log id: stored entry} (a copy), oldest first."""
        with self._lock:
            return {k: dict(v) for k, v in self._logs.items()}

    def _write_log(
        self,
        *,
        tool_slug: str,
        toolkit_slug: str,
        session: dict[str, Any],
        account: dict[str, Any] | None,
        credential_source: str,
        arguments: dict[str, Any],
        response: dict[str, Any],
        error: str | None,
        parent: dict[str, str] | None = None,
        log_id: str | None = None,
    ) -> dict[str, Any]:
        """Store one execution's entry (under `_lock`) and return it."""
        now = time.time()
        started = now * 1000
        duration = 40 + len(tool_slug) % 7 * 11  # a plausible, stable duration
        log_id = log_id or f"log_{token(16)}"
        failed = error is not None
        entry = {
            "id": log_id,
            "timestamp": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            + "Z",
            "type": "tool.execution",
            "status": "failed" if failed else "success",
            "level": "error" if failed else "info",
            "message": f"{tool_slug} failed: {error}" if failed else f"{tool_slug} succeeded",
            "metadata": {"credential_source": credential_source},
            "metrics": {"duration_ms": duration},
            "parent": parent,
            "timings": {"start_time": started, "end_time": started + duration},
            "context": {"session_id": session["session_id"], "trace_id": None, "request_id": None},
            "source": {"host": "composio-emulator", "framework": None, "language": None},
            "data": {
                "tool_slug": tool_slug,
                "toolkit_slug": toolkit_slug,
                "user_id": session["config"]["user_id"],
                "connected_account_id": account["id"] if account else None,
                "auth_config_id": account["auth_config_id"] if account else None,
                "arguments": arguments,
                "response": response,
                "error": error,
            },
            "at_ms": started,
        }
        self._persist(("put", "execution_log", log_id, entry))
        self._logs[log_id] = entry
        return entry

    def _h_logs_tool_execution(self, params: dict[str, str], query: Any, body: Any) -> Response:
        if not isinstance(body, dict):
            raise validation_error("payload", "Expected object")
        limit = body.get("limit", LOGS_DEFAULT_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int | float) or limit != int(limit):
            raise validation_error("payload.limit", "Expected integer")
        if not 1 <= limit <= LOGS_MAX_LIMIT:
            raise validation_error(
                "payload.limit", f"Number must be between 1 and {LOGS_MAX_LIMIT}"
            )
        filters = _filters(body.get("filters"))
        since, until = _time_range(body.get("time_range"))
        page, limit = 1, int(limit)
        cursor = body.get("cursor")
        if cursor:
            if not isinstance(cursor, str):
                raise validation_error("payload.cursor", "Expected string")
            page, _ = decode_cursor(cursor)
        with self._lock:
            entries = [
                e
                for e in self._logs.values()
                if (since is None or e["at_ms"] >= since)
                and (until is None or e["at_ms"] <= until)
                and all(_matches(e, f) for f in filters)
            ]
        entries.reverse()  # newest first
        start = (page - 1) * limit
        chunk = entries[start : start + limit]
        more = start + limit < len(entries)
        answer = {
            "logs": [{k: e[k] for k in _LIST_KEYS} for e in chunk],
            "next_cursor": encode_cursor(page + 1, limit) if more else None,
        }
        return Response(200, answer, {})

    def _h_logs_tool_execution_get(self, params: dict[str, str], query: Any, body: Any) -> Response:
        with self._lock:
            entry = self._logs.get(params["log_id"])
        if entry is None:
            raise ApiError(404, f"Log {params['log_id']} not found", code=10404)
        return Response(200, {k: v for k, v in entry.items() if k != "at_ms"}, {})


def _field_value(entry: dict[str, Any], field: str) -> str:
    if field == "log_id":
        return entry["id"]
    if field == "status":
        return entry["status"]
    if field in ("session_id", "request_id"):
        return entry["context"].get(field) or ""
    return entry["data"].get(field) or ""


def _matches(entry: dict[str, Any], flt: tuple[str, str, str]) -> bool:
    field, operator, value = flt
    actual = str(_field_value(entry, field))
    if operator == "==":
        return actual == value
    if operator == "!=":
        return actual != value
    if operator == "contains":
        return value.lower() in actual.lower()
    return value.lower() not in actual.lower()


def _filters(value: Any) -> list[tuple[str, str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise validation_error("payload.filters", "Expected array")
    out = []
    for i, flt in enumerate(value):
        where = f"payload.filters.{i}"
        if not isinstance(flt, dict):
            raise validation_error(where, "Expected object")
        if flt.get("field") not in LOG_FIELDS:
            raise validation_error(f"{where}.field", f"Expected one of {', '.join(LOG_FIELDS)}")
        if flt.get("operator") not in LOG_OPERATORS:
            raise validation_error(
                f"{where}.operator", f"Expected one of {', '.join(LOG_OPERATORS)}"
            )
        if not isinstance(flt.get("value"), str):
            raise validation_error(f"{where}.value", "Expected string")
        out.append((flt["field"], flt["operator"], flt["value"]))
    return out


def _time_range(value: Any) -> tuple[float | None, float | None]:
    if value is None:
        return None, None
    ok = isinstance(value, dict) and all(
        isinstance(value.get(k), int | float) and not isinstance(value.get(k), bool)
        for k in ("from", "to")
    )
    if not ok:
        raise validation_error("payload.time_range", "Expected {from, to} in epoch milliseconds")
    return float(value["from"]), float(value["to"])
