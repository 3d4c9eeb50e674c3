"""The one module that talks to Composio (through the real `composio` SDK).

Everything else in the project calls these functions and gets small frozen dataclasses back, never
SDK objects and never `mcp.headers` (which the SDK builds from the API key). Failures become a few
exceptions that say what happened and whether Composio may have acted.

The SDK is imported lazily: `import composio` costs seconds, and `manage.py check`, migrations and
web start-up must not pay for it. Web workers import it in a background thread right after they
start (`warm_up`), so the first request that calls Composio does not pay for it either.

Retries have one owner, this module: the SDK is built with `max_retries=0`, and `_call` repeats a
request only when it is safe to (nothing was sent, or the call is a read). A create or a toolkit
change that may have reached Composio is never sent again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings

from sessions_app.composio.errors import (
    ComposioConflict,
    ComposioError,
    ComposioNotConfigured,
    ComposioNotFound,  # noqa: F401  (the services catch it as seam.ComposioNotFound)
    ComposioRateLimited,  # noqa: F401  (likewise)
    ComposioRejected,  # noqa: F401  (likewise)
    ComposioUnavailable,
    from_status,
    may_have_acted,
)
from sessions_app.composio.records import (
    CatalogToolkit,
    ConfigVersion,
    ConnectedAccount,
    ConnectLink,
    ExecutionLogDetail,
    ExecutionLogEntry,
    ExecutionLogPage,
    RemoteSession,
    ToolExecution,
    ToolkitConnection,
)

if TYPE_CHECKING:
    from composio import Composio

logger = logging.getLogger(__name__)
T = TypeVar("T")


# --- The client --------------------------------------------------------------------------------

_client_lock = threading.Lock()
_client: Composio | None = None
_client_config: tuple[str, str, float, float] | None = None


def is_emulated() -> bool:
    """True when no API key is configured and the console talks to the bundled emulator."""
    return not settings.COMPOSIO_API_KEY


def _connection_settings() -> tuple[str, str, float, float]:
    if is_emulated():
        api_key, base_url = settings.COMPOSIO_EMULATOR_API_KEY, settings.COMPOSIO_EMULATOR_URL
    else:
        api_key, base_url = settings.COMPOSIO_API_KEY, settings.COMPOSIO_BASE_URL
    return (
        api_key,
        base_url,
        float(settings.COMPOSIO_CONNECT_TIMEOUT),
        float(settings.COMPOSIO_READ_TIMEOUT),
    )


def _silence_telemetry() -> None:
    # `allow_tracking=False` holds only in the context that built the client; other threads
    # would still post events. Replacing the hook is the process-wide switch.
    import composio.core.models.base as sdk_base

    sdk_base.push_event = lambda *args, **kwargs: None


def get_client() -> Composio:
    """The process's one SDK client (rebuilt only if the settings change, as in tests)."""
    global _client, _client_config
    config = _connection_settings()
    with _client_lock:
        if _client is not None and _client_config == config:
            return _client
        api_key, base_url, connect_timeout, read_timeout = config
        if not api_key:
            raise ComposioNotConfigured("No Composio API key is configured.")
        import httpx
        from composio import Composio

        _silence_telemetry()
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        kwargs: dict[str, Any] = {
            "api_key": api_key,
            "timeout": timeout,
            "max_retries": 0,
            "allow_tracking": False,
            # httpx's own client and transport, as the SDK would build them, with the thread's
            # gate around each request on the wire (`_GatedTransport`).
            "http_client": httpx.Client(
                transport=_GatedTransport(httpx.HTTPTransport()),
                timeout=timeout,
                follow_redirects=True,
            ),
        }
        if base_url:
            kwargs["base_url"] = base_url
        _client = Composio(**kwargs)
        _client_config = config
        return _client


def warm_up() -> None:
    """Import the SDK and build the client now, so no request pays for it.

    Web workers call this in a background thread right after they start
    (`tool_router.health.warm_up_in_background`, from console/wsgi.py and asgi.py); nothing is
    sent to Composio. Without a key configured only the import happens.
    """
    import composio  # noqa: F401  (the import is the point: seconds, once per process)

    with contextlib.suppress(ComposioNotConfigured):
        get_client()


def reset_client() -> None:
    global _client, _client_config
    with _client_lock:
        _client = None
        _client_config = None


# --- Error mapping and the one retry policy ----------------------------------------------------


def _redact(text: str) -> str:
    for secret in (settings.COMPOSIO_API_KEY, settings.COMPOSIO_EMULATOR_API_KEY):
        if secret and secret in text:
            text = text.replace(secret, "[redacted]")
    return text


def _error_fields(exc: Any) -> tuple[str, str, str | None]:
    """Composio's (slug, message, retry-after) from an SDK status error's body and headers."""
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    slug = message = ""
    if isinstance(error, dict):
        slug = str(error.get("slug") or "")
        message = str(error.get("message") or "")
        extra = error.get("errors")
        if isinstance(extra, list) and extra:
            message = f"{message} ({'; '.join(str(e) for e in extra[:5])})".strip()
    response = getattr(exc, "response", None)
    retry_after = response.headers.get("retry-after") if response is not None else None
    return _redact(slug[:100]), _redact(message[:400]), retry_after


def _nothing_was_sent(exc: BaseException) -> bool:
    import httpx

    cause = exc.__cause__
    return isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _translate(exc: Exception, *, what: str, mutating: bool) -> ComposioError:
    """Map an SDK exception to the seam's exceptions, deciding whether Composio may have acted."""
    import composio_client as cc
    from composio.exceptions import SessionConfigConflictError

    if isinstance(exc, SessionConfigConflictError):
        return ComposioConflict(
            "Someone else changed this session at Composio since it was read; reload it and "
            "try again.",
            status=409,
            slug="SessionConfigConflict",
        )
    if isinstance(exc, cc.APIConnectionError):  # timeouts included (a subclass)
        timeout = isinstance(exc, cc.APITimeoutError)
        if _nothing_was_sent(exc):
            how = (
                "did not answer the connection" if timeout else "is unreachable (connection failed)"
            )
            return ComposioUnavailable(f"Composio {how} while {what}.")
        how = "Composio did not answer in time" if timeout else "The connection to Composio broke"
        return ComposioUnavailable(
            f"{how} while {what}" + may_have_acted(mutating), outcome_unknown=mutating
        )
    if isinstance(exc, cc.APIResponseValidationError):
        return ComposioUnavailable(
            f"Composio sent a malformed answer while {what}" + may_have_acted(mutating),
            outcome_unknown=mutating,
        )
    if isinstance(exc, cc.APIStatusError):
        slug, message, retry_after = _error_fields(exc)
        return from_status(
            exc.status_code,
            slug=slug,
            message=message,
            retry_after=retry_after,
            what=what,
            mutating=mutating,
        )
    # Anything else the SDK raises while reading a 2xx (a body it cannot make sense of).
    return ComposioUnavailable(
        f"Composio's answer could not be read while {what}" + may_have_acted(mutating),
        outcome_unknown=mutating,
    )


# A context manager a bulk runner's thread enters around each of its calls (`gated`): the cap
# on calls in flight, which also counts them. Thread-local: web requests are never gated.
_gate = threading.local()


@contextlib.contextmanager
def gated(gate: contextlib.AbstractContextManager[object] | None) -> Iterator[None]:
    """Make every request this thread sends enter `gate` (None: ungated) while the block runs."""
    before = getattr(_gate, "value", None)
    _gate.value = gate
    try:
        yield
    finally:
        _gate.value = before


class _GatedTransport:
    """An httpx transport that sends each request through `inner` inside the sending thread's
    gate, if it has one: the gate holds a request from when it is sent until Composio's answer
    (status and headers) is back, and not while the SDK builds the request or parses the answer,
    which is the sending thread's CPU work, not a call in flight."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def handle_request(self, request: Any) -> Any:
        gate = getattr(_gate, "value", None)
        with gate if gate is not None else contextlib.nullcontext():
            return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> _GatedTransport:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.__exit__(*exc)


def _call(fn: Callable[[], T], *, what: str, mutating: bool) -> T:
    """Run one SDK call with the project's retry policy.

    Repeats only when that cannot cause a second effect: when nothing reached Composio
    (connection refused), or, for reads and deletes, on 502/503/504. Never sleeps for a 429:
    a web request must not wait, and background jobs pause on `retry_after` themselves.
    """
    import composio_client as cc

    attempts = 1 + max(0, int(settings.COMPOSIO_SAFE_RETRIES))
    for attempt in range(attempts):
        try:
            return fn()
        except ComposioError:
            raise
        except Exception as exc:
            error = _translate(exc, what=what, mutating=mutating)
            last_attempt = attempt == attempts - 1
            retry = not last_attempt and (
                (isinstance(exc, cc.APIError) and _nothing_was_sent(exc))
                or (
                    not mutating
                    and isinstance(exc, cc.APIStatusError)
                    and exc.status_code in (502, 503, 504)
                )
            )
            if not retry:
                logger.warning("composio call failed: %s", error.message)
                raise error from None
            time.sleep(min(2.0, 0.2 * (2**attempt)) * (0.5 + random.random()))
    raise AssertionError("unreachable")  # pragma: no cover


# --- The calls ---------------------------------------------------------------------------------


def _validated_toolkits(toolkits: Sequence[str] | None) -> list[str]:
    # [] means "deny all" and None means "all toolkits" at Composio: neither may happen by accident.
    if toolkits is None or isinstance(toolkits, str) or len(toolkits) == 0:
        raise ValueError("A session needs an explicit, non-empty list of toolkit slugs.")
    slugs = list(toolkits)
    if any(not isinstance(s, str) or not s for s in slugs):
        raise ValueError("Toolkit slugs must be non-empty strings.")
    return slugs


def _enabled_toolkits(config: Any) -> tuple[str, ...]:
    toolkits = getattr(config, "toolkits", None)
    enabled = getattr(toolkits, "enabled", None)
    if enabled is None and isinstance(toolkits, dict):
        enabled = toolkits.get("enabled")
    return tuple(str(s) for s in enabled or ())


def _remote_session(session: Any, *, user_id: str | None = None) -> RemoteSession:
    mcp = session.mcp
    mcp_type = getattr(mcp.type, "value", mcp.type)
    config = getattr(session, "config", None)
    return RemoteSession(
        session_id=str(session.session_id),
        user_id=str(user_id or getattr(config, "user_id", "") or ""),
        mcp_url=str(mcp.url),
        mcp_type=str(mcp_type),
        toolkits=_enabled_toolkits(config),
        config_version=session.config_version,
    )


def create_session(*, user_id: str, toolkits: Sequence[str]) -> RemoteSession:
    """Create a session for one end user with exactly these toolkits. Never re-sent once sent."""
    if not isinstance(user_id, str) or not user_id:
        raise ValueError("A session needs the end user's id.")
    slugs = _validated_toolkits(toolkits)
    client = get_client()

    def create() -> RemoteSession:
        session = client.create(
            user_id=user_id, toolkits={"enable": slugs}, manage_connections=True
        )
        return _remote_session(session, user_id=user_id)

    return _call(create, what=f"creating a session for {user_id}", mutating=True)


def get_session(session_id: str) -> RemoteSession:
    client = get_client()
    return _call(
        lambda: _remote_session(client.use(session_id)),
        what=f"fetching session {session_id}",
        mutating=False,
    )


def update_session_toolkits(
    *, session_id: str, toolkits: Sequence[str], expected_config_version: int | None
) -> RemoteSession:
    """Replace the session's toolkits in place (same id and URL). 409 -> ComposioConflict."""
    slugs = _validated_toolkits(toolkits)
    client = get_client()
    what = f"changing the toolkits of session {session_id}"

    session = _call(
        lambda: client.use(session_id), what=f"fetching session {session_id}", mutating=False
    )

    def update() -> RemoteSession:
        session.update(
            toolkits={"enable": slugs},
            expected_config_version=(
                expected_config_version if expected_config_version is not None else False
            ),
        )
        return _remote_session(session)

    return _call(update, what=what, mutating=True)


def delete_session(session_id: str) -> None:
    """Delete a session at Composio. A session that is already gone raises ComposioNotFound."""
    client = get_client()
    _call(
        lambda: client.sessions.delete(session_id),
        what=f"deleting session {session_id}",
        mutating=True,
    )


def delete_session_if_known(session_id: str) -> bool:
    """Delete a session; False if Composio no longer knew it (deleting twice is harmless)."""
    try:
        delete_session(session_id)
    except ComposioNotFound:
        return False
    return True


def session_connections(session_id: str, *, page_size: int = 50) -> list[ToolkitConnection]:
    """Each toolkit of the session with its connection state (all pages)."""
    client = get_client()
    session = _call(
        lambda: client.use(session_id), what=f"fetching session {session_id}", mutating=False
    )
    out: list[ToolkitConnection] = []
    cursor: str | None = None
    while True:
        page = _call(
            lambda c=cursor: session.toolkits(limit=page_size, next_cursor=c),
            what=f"reading the connections of session {session_id}",
            mutating=False,
        )
        for item in page.items:
            account = item.connection.connected_account if item.connection else None
            out.append(
                ToolkitConnection(
                    slug=str(item.slug),
                    name=str(item.name),
                    no_auth=bool(item.is_no_auth),
                    status=str(account.status) if account and account.status else None,
                    connected_account_id=str(account.id) if account else None,
                )
            )
        cursor = page.next_cursor
        if not cursor:
            return out


def session_config_history(
    session_id: str, *, page_size: int = 100, max_pages: int = 10
) -> list[ConfigVersion]:
    """Composio's record of every configuration the session has had, newest first (all pages,
    at most `max_pages`). One read per page; an unknown session raises ComposioNotFound."""
    if not isinstance(session_id, str) or not session_id:
        raise ValueError("Reading a config history needs the session id.")
    client = get_client()
    out: list[ConfigVersion] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(max_pages):
        page = _call(
            lambda c=cursor: client.client.tool_router.session.config_history(
                session_id, limit=page_size, **({"cursor": c} if c else {})
            ),
            what=f"reading the config history of session {session_id}",
            mutating=False,
        )
        for item in page.items:
            created = item.created_at
            at = created.isoformat() if hasattr(created, "isoformat") else str(created)
            out.append(
                ConfigVersion(
                    version=int(item.version),
                    created_at=at,
                    is_current=bool(item.is_current),
                    toolkits=_enabled_toolkits(item.config),
                )
            )
        cursor = getattr(page, "next_cursor", None)
        if not cursor:
            break
        if cursor in seen:
            raise ComposioUnavailable("Composio's config history pagination repeated a cursor.")
        seen.add(cursor)
    return out


def _connected_account(item: Any) -> ConnectedAccount:
    auth_config = getattr(item, "auth_config", None)
    toolkit = getattr(item, "toolkit", None)
    return ConnectedAccount(
        id=str(item.id),
        user_id=str(getattr(item, "user_id", "") or ""),
        toolkit=str(getattr(toolkit, "slug", "") or ""),
        status=str(item.status or ""),
        status_reason=str(getattr(item, "status_reason", "") or ""),
        is_disabled=bool(getattr(item, "is_disabled", False)),
        created_at=str(getattr(item, "created_at", "") or ""),
        updated_at=str(getattr(item, "updated_at", "") or ""),
        auth_config_id=str(getattr(auth_config, "id", "") or ""),
        auth_scheme=str(getattr(auth_config, "auth_scheme", "") or ""),
        auth_config_managed=bool(getattr(auth_config, "is_composio_managed", False)),
    )


def list_connected_accounts(
    user_id: str, *, page_size: int = 100, max_pages: int = 10
) -> list[ConnectedAccount]:
    """Every connected account of one end user (all toolkits, all statuses), newest first,
    following Composio's cursor; at most `max_pages` pages (a user with more is cut there)."""
    if not isinstance(user_id, str) or not user_id:
        raise ValueError("Listing connected accounts needs the end user's id.")
    client = get_client()
    out: list[ConnectedAccount] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(max_pages):
        page = _call(
            lambda c=cursor: client.client.connected_accounts.list(
                user_ids=[user_id], limit=page_size, **({"cursor": c} if c else {})
            ),
            what=f"listing the connected accounts of {user_id}",
            mutating=False,
        )
        out.extend(_connected_account(item) for item in page.items)
        cursor = getattr(page, "next_cursor", None)
        if not cursor:
            break
        if cursor in seen:
            raise ComposioUnavailable("Composio's connected-account pagination repeated a cursor.")
        seen.add(cursor)
    return out


def create_connect_link(
    *, session_id: str, toolkit: str, callback_url: str | None = None
) -> ConnectLink:
    """Ask Composio for a connect link for one toolkit of a session (one request; never re-sent
    once sent: each link may make a new INITIATED account)."""
    client = get_client()
    kwargs: dict[str, Any] = {"toolkit": toolkit}
    if callback_url:
        kwargs["callback_url"] = callback_url

    def link() -> ConnectLink:
        answer = client.client.tool_router.session.link(session_id, **kwargs)
        return ConnectLink(
            redirect_url=str(answer.redirect_url),
            connected_account_id=str(answer.connected_account_id),
        )

    return _call(link, what=f"creating a {toolkit} connect link", mutating=True)


def set_connected_account_enabled(account_id: str, *, enabled: bool) -> None:
    """Enable or disable (INACTIVE) one connected account. Setting the state it already has is
    harmless, so the request may be repeated; it is still not retried here (a write)."""
    client = get_client()
    verb = "enabling" if enabled else "disabling"
    _call(
        lambda: client.client.connected_accounts.update_status(account_id, enabled=enabled),
        what=f"{verb} a connected account",
        mutating=True,
    )


def execute_tool(
    session_id: str, tool_slug: str, arguments: dict[str, Any] | None = None
) -> ToolExecution:
    """Run one tool in a session (never retried: an execution is a write). A refusal (no
    active connection, unknown tool) raises the ComposioError it translates to."""
    client = get_client()
    session = _call(
        lambda: client.use(session_id), what=f"fetching session {session_id}", mutating=False
    )
    result = _call(
        lambda: session.execute(tool_slug, arguments=arguments or {}),
        what=f"running {tool_slug} in session {session_id}",
        mutating=True,
    )
    return ToolExecution(
        tool_slug=tool_slug,
        result_type=str(result.result_type),
        log_id=str(result.log_id or ""),
        error=str(result.error or ""),
    )


# --- Execution logs -----------------------------------------------------------------------------

# The fields Composio's log search filters on (composio_client's LogCreateToolExecutionBody).
LOG_FILTER_FIELDS = frozenset(
    {"tool_slug", "toolkit_slug", "status", "user_id", "session_id", "connected_account_id"}
)
LOG_PAGE_MAX = 100
_TOOL_SLUG_WORD = re.compile(r"^[A-Z][A-Z0-9_]{2,127}$")


def _enum_value(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def _log_entry(item: Any) -> ExecutionLogEntry:
    stamp = item.timestamp
    at_ms = stamp.timestamp() * 1000 if hasattr(stamp, "timestamp") else 0.0
    metrics = getattr(item, "metrics", None) or {}
    duration = metrics.get("duration_ms") if isinstance(metrics, dict) else None
    message = str(getattr(item, "message", "") or "")
    first = message.split(" ", 1)[0].rstrip(":")
    parent = getattr(item, "parent", None)
    return ExecutionLogEntry(
        log_id=str(item.id),
        at_ms=float(at_ms),
        status=_enum_value(item.status),
        message=message,
        duration_ms=float(duration) if isinstance(duration, int | float) else None,
        tool_slug=first if _TOOL_SLUG_WORD.match(first) else "",
        parent_tool_slug=str(getattr(parent, "tool_slug", "") or "") if parent else "",
    )


def search_execution_logs(
    *,
    filters: Sequence[tuple[str, str]],
    limit: int = 50,
    cursor: str | None = None,
    since_ms: float | None = None,
    until_ms: float | None = None,
) -> ExecutionLogPage:
    """One page of Composio's tool execution log, newest first: entries whose every
    `(field, value)` of `filters` matches exactly (fields: LOG_FILTER_FIELDS), inside the time
    range when given, continuing at Composio's `cursor`. One request, a read."""
    bad = [field for field, _ in filters if field not in LOG_FILTER_FIELDS]
    if bad:
        raise ValueError(f"Composio's log search cannot filter on {bad}.")
    body: dict[str, Any] = {
        "limit": max(1, min(LOG_PAGE_MAX, int(limit))),
        "filters": [{"field": f, "operator": "==", "value": v} for f, v in filters],
    }
    if cursor:
        body["cursor"] = cursor
    if since_ms is not None or until_ms is not None:
        body["time_range"] = {"from": since_ms or 0, "to": until_ms or time.time() * 1000}
    client = get_client()

    def search() -> ExecutionLogPage:
        page = client.client.logs.create_tool_execution(**body)
        entries = tuple(_log_entry(item) for item in page.logs)
        return ExecutionLogPage(entries=entries, next_cursor=page.next_cursor or None)

    return _call(search, what="reading the tool execution log", mutating=False)


def get_execution_log(log_id: str) -> ExecutionLogDetail:
    """One execution log entry in full; an unknown id raises ComposioNotFound."""
    if not isinstance(log_id, str) or not log_id:
        raise ValueError("An execution log id is needed.")
    client = get_client()

    def get() -> ExecutionLogDetail:
        item = client.client.logs.retrieve_tool_execution(log_id)
        data = dict(item.data or {})
        context = getattr(item, "context", None)
        metadata = getattr(item, "metadata", None)
        entry = _log_entry(item)
        if data.get("tool_slug"):
            entry = dataclasses.replace(entry, tool_slug=str(data["tool_slug"]))
        return ExecutionLogDetail(
            entry=entry,
            session_id=str(getattr(context, "session_id", "") or ""),
            user_id=str(data.get("user_id") or ""),
            toolkit_slug=str(data.get("toolkit_slug") or ""),
            data=data,
            metadata=metadata.model_dump(mode="json") if metadata is not None else {},
        )

    return _call(get, what=f"reading execution log {log_id}", mutating=False)


def iter_catalog_pages(*, page_size: int = 1000) -> Iterator[tuple[list[CatalogToolkit], int]]:
    """Composio's whole toolkit catalog, page by page, with the total it announces."""
    client = get_client()
    cursor: str | None = None
    seen_cursors: set[str] = set()
    while True:
        page = _call(
            lambda c=cursor: client.toolkits.list(limit=page_size, cursor=c),
            what="reading the toolkit catalog",
            mutating=False,
        )
        items = [_catalog_toolkit(item) for item in page.items]
        yield items, int(getattr(page, "total_items", 0) or 0)
        cursor = page.next_cursor
        if not cursor:
            return
        if cursor in seen_cursors:
            raise ComposioUnavailable("Composio's catalog pagination repeated a cursor.")
        seen_cursors.add(cursor)


def list_catalog(*, page_size: int = 1000) -> list[CatalogToolkit]:
    return [toolkit for page, _ in iter_catalog_pages(page_size=page_size) for toolkit in page]


def _catalog_toolkit(item: Any) -> CatalogToolkit:
    meta = getattr(item, "meta", None)
    categories = getattr(meta, "categories", None) or []
    return CatalogToolkit(
        slug=str(item.slug),
        name=str(item.name or item.slug),
        auth_schemes=tuple(str(s) for s in (getattr(item, "auth_schemes", None) or [])),
        no_auth=bool(getattr(item, "no_auth", False)),
        categories=tuple(str(getattr(c, "name", c)) for c in categories),
        description=str(getattr(meta, "description", "") or ""),
    )


def ping() -> None:
    """One cheap read (the first catalog item) to tell whether Composio answers; raises if not."""
    client = get_client()
    _call(lambda: client.toolkits.list(limit=1), what="checking Composio", mutating=False)
