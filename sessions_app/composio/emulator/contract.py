"""What a valid request is, endpoint by endpoint: composio_client's own params types.

`CONTRACTS` maps each routed endpoint name (see `http._ROUTES`) to the `composio_client`
TypedDicts its JSON body and its query string must match. `validate` checks a request against
them with pydantic's `TypeAdapter` before the handler runs, and answers the 400 validation
envelope naming every failing field (`Error in payload.toolkits: Invalid input`,
`Error in query.limit: Input should be a valid integer, ...`). No rule is hand-written here:
required keys, types, `Literal` enums, nested objects and unions all come from `composio_client`.

How strictly:
- Bodies are validated strictly (JSON `"true"` is not a boolean, `"1"` not an integer) and an
  unknown key is refused, at any depth: the real API answered 400 to `expected_config_version`
  before it knew that field (see composio's `test_tool_router_session_update.py`). That also keeps
  `toolkits` `enable` and `disable` mutually exclusive, as the union of TypedDicts says.
- Query strings are text, so they are validated laxly (`limit=5` is an integer) and unknown
  parameters are ignored, as HTTP APIs do. A list-typed parameter is read comma-separated and/or
  repeated (`toolkits=github,gmail`).

Where the real API accepts more than `composio_client` types, the wider type is declared below by
subclassing the `composio_client` TypedDict, with the source of the difference beside it. Nothing
else may widen or narrow a rule.

Importing this module imports `composio_client` (several seconds, cold): the emulator imports it
on `start()`, never at its own import.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Required

from annotated_types import Ge, MinLen
from composio_client.types import (
    auth_config_list_params,
    connected_account_delete_params,
    connected_account_list_params,
    connected_account_update_status_params,
    log_create_tool_execution_params,
    toolkit_list_params,
    toolkit_retrieve_multi_params,
    toolkit_retrieve_params,
)
from composio_client.types.tool_router import (
    session_config_history_params,
    session_create_params,
    session_execute_meta_params,
    session_execute_params,
    session_link_params,
    session_patch_params,
    session_search_params,
    session_toolkits_params,
    session_tools_params,
)
from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config

from .errors import ApiError
from .paging import Query

_FORBID = ConfigDict(extra="forbid")
_IGNORE = ConfigDict(extra="ignore")

# Widened types: what the real API accepts beyond composio_client's TypedDicts ---------------

# composio 0.30.0 sends session hooks as an extra root body field on create and update
# (`ToolRouterSession.update`: "The generated client has no typed parameter ... for hooks").
_Hooks = list[dict[str, object]]


class SessionCreateBody(session_create_params.SessionCreateParams, total=False):
    # The spec's minLength 1 (composio_client's `SessionCreateBody`, the generated request
    # model), which the TypedDict cannot say.
    user_id: Required[Annotated[str, MinLen(1)]]
    hooks: _Hooks


class SessionPatchManageConnections(session_patch_params.ManageConnections, total=False):
    # `ToolRouterSession.update`: "Inside manage_connections, callback_url=None removes only the
    # stored callback URL."
    callback_url: str | None


class SessionPatchBody(session_patch_params.SessionPatchParams, total=False):
    # `ToolRouterSession.update`: "The generated client does not type None for every policy
    # block although the API accepts it (it removes the stored override)". `instant` stays
    # non-nullable ("it does not accept None").
    toolkits: session_patch_params.Toolkits | None
    tools: dict[str, session_patch_params.Tools] | None
    tags: session_patch_params.Tags | None
    auth_configs: dict[str, str] | None
    manage_connections: SessionPatchManageConnections | None
    preload: session_patch_params.Preload | None
    search: session_patch_params.Search | None
    execute: session_patch_params.Execute | None
    # Extra root fields composio sends (`ToolRouterSession.update`): the optimistic-concurrency
    # precondition (a positive integer, or absent) and the hooks (None removes them).
    expected_config_version: Annotated[int, Ge(1)]
    hooks: _Hooks | None


@dataclass(frozen=True)
class Contract:
    """The TypedDicts one endpoint's JSON body and query string must match (None: not checked)."""

    body: type | None = None
    query: type | None = None


# Endpoint name -> what its request must be. Every routed endpoint has an entry (a test checks),
# even when it takes nothing (`Contract()`): a new endpoint cannot skip validation by accident.
CONTRACTS: dict[str, Contract] = {
    # Tool router sessions
    "session.create": Contract(body=SessionCreateBody),
    "session.get": Contract(),
    "session.update": Contract(body=SessionPatchBody),
    "session.delete": Contract(),
    "session.toolkits": Contract(query=session_toolkits_params.SessionToolkitsParams),
    "session.link": Contract(body=session_link_params.SessionLinkParams),
    "session.config_history": Contract(
        query=session_config_history_params.SessionConfigHistoryParams
    ),
    # Toolkit catalog
    "toolkits.list": Contract(query=toolkit_list_params.ToolkitListParams),
    "toolkits.get": Contract(query=toolkit_retrieve_params.ToolkitRetrieveParams),
    "toolkits.categories": Contract(),
    "toolkits.multi": Contract(body=toolkit_retrieve_multi_params.ToolkitRetrieveMultiParams),
    "session.search": Contract(body=session_search_params.SessionSearchParams),
    "session.tools": Contract(query=session_tools_params.SessionToolsParams),
    "session.execute": Contract(body=session_execute_params.SessionExecuteParams),
    "session.execute_meta": Contract(body=session_execute_meta_params.SessionExecuteMetaParams),
    "connected_accounts.list": Contract(
        query=connected_account_list_params.ConnectedAccountListParams
    ),
    "connected_accounts.get": Contract(),
    "connected_accounts.update_status": Contract(
        body=connected_account_update_status_params.ConnectedAccountUpdateStatusParams
    ),
    # `ConnectedAccountRefreshParams` mixes a query and a body field under one aliased name
    # (`query_redirect_url` / `body_redirect_url`, both `redirect_url` on the wire): it needs a
    # TypedDict of its own per side before it can go here.
    "connected_accounts.refresh": Contract(),
    "connected_accounts.delete": Contract(
        query=connected_account_delete_params.ConnectedAccountDeleteParams
    ),
    "auth_configs.list": Contract(query=auth_config_list_params.AuthConfigListParams),
    "logs.tool_execution": Contract(
        body=log_create_tool_execution_params.LogCreateToolExecutionParams
    ),
    "logs.tool_execution_get": Contract(),
}


# Validation ---------------------------------------------------------------------------------


@cache
def _adapter(typed_dict: type, *, strict_body: bool) -> TypeAdapter[Any]:
    """A TypeAdapter over `typed_dict`, refusing (bodies) or ignoring (queries) unknown keys.

    The config goes on a subclass: composio_client's own classes are never changed."""
    config = _FORBID if strict_body else _IGNORE
    wrapper = typing.cast(type, with_config(config)(type(typed_dict.__name__, (typed_dict,), {})))
    return TypeAdapter(wrapper)


@cache
def _list_keys(typed_dict: type) -> frozenset[str]:
    """The keys of `typed_dict` whose value is a list, read from a query string as a list."""
    keys = set()
    for key, hint in typing.get_type_hints(typed_dict).items():
        unions = (typing.Union, types.UnionType)
        options = typing.get_args(hint) if typing.get_origin(hint) in unions else (hint,)
        for option in options:
            origin = typing.get_origin(option)
            if origin in (list, collections.abc.Sequence, collections.abc.Iterable):
                keys.add(key)
    return frozenset(keys)


def query_mapping(typed_dict: type, query: Query) -> dict[str, Any]:
    """The query string as the dict `typed_dict` describes: one value a key, lists for lists."""
    lists = _list_keys(typed_dict)
    out: dict[str, Any] = {}
    for key, values in query.items():
        if key in lists:
            out[key] = [part for value in values for part in value.split(",") if part]
        elif values:
            out[key] = values[0]
    return out


def validate(endpoint: str, query: Query, body: Any) -> None:
    """Raise the 400 validation error when `body` or `query` breaks `endpoint`'s contract.

    An endpoint without an entry is not checked (`unknown`, `mcp`)."""
    contract = CONTRACTS.get(endpoint)
    if contract is None:
        return
    errors: list[str] = []
    if contract.body is not None:
        errors += _errors(_adapter(contract.body, strict_body=True), body, "payload", strict=True)
    if contract.query is not None:
        data = query_mapping(contract.query, query)
        errors += _errors(_adapter(contract.query, strict_body=False), data, "query", strict=False)
    if errors:
        raise ApiError(400, "Validation error while processing request", errors=errors)


def _errors(adapter: TypeAdapter[Any], data: Any, root: str, *, strict: bool) -> list[str]:
    try:
        value = adapter.validate_python(data, strict=strict)
    except ValidationError as exc:
        return describe(exc.errors(include_url=False), data, root)
    return describe(_lazy_errors(value, ()), data, root)


def _lazy_errors(value: Any, loc: tuple[int | str, ...]) -> list[Any]:
    """The errors pydantic defers: an `Iterable[...]` field is validated only when iterated, so
    every one in the validated `value` is iterated here; their `loc` is made absolute."""
    if isinstance(value, dict):
        return [e for k, v in value.items() for e in _lazy_errors(v, (*loc, k))]
    if isinstance(value, list | tuple):
        return [e for i, v in enumerate(value) for e in _lazy_errors(v, (*loc, i))]
    if isinstance(value, collections.abc.Iterator):
        try:
            items = list(value)
        except ValidationError as exc:
            return [{**e, "loc": (*loc, *e["loc"])} for e in exc.errors(include_url=False)]
        return _lazy_errors(items, loc)
    return []


def describe(errors: list[Any], data: Any, root: str) -> list[str]:
    """`Error in <path>: <what>` lines for pydantic's `errors` on `data`, one a field, in order.

    pydantic names each union member it tried inside `loc` (`toolkits.ToolkitsEnable.enable`);
    a value that matches no member of a union is reported once, at the union's own path, as
    `Invalid input`. Any other error keeps pydantic's message at its full path."""
    lines: list[str] = []
    for error in errors:
        path, in_union = _field_path(error["loc"], data, missing=error["type"] == "missing")
        line = f"Error in {_dotted(root, path)}: {'Invalid input' if in_union else error['msg']}"
        if line not in lines:
            lines.append(line)
    return lines


def _field_path(
    loc: tuple[int | str, ...], data: Any, *, missing: bool
) -> tuple[tuple[int | str, ...], bool]:
    """(`loc` up to the first union member's name, or all of it; whether a union was met).

    A `loc` step that is not a key (or index) of the data at that point is the name pydantic
    gives a union member, except the last step of a `missing` error (the absent key)."""
    path: list[int | str] = []
    node = data
    for index, step in enumerate(loc):
        if (
            isinstance(node, dict)
            and step in node
            or isinstance(node, list)
            and isinstance(step, int)
            and 0 <= step < len(node)
        ):
            node = node[step]
        elif missing and index == len(loc) - 1:
            pass
        else:
            return tuple(path), True
        path.append(step)
    return tuple(path), False


def _has(node: Any, step: int | str) -> bool:
    if isinstance(node, dict):
        return step in node
    return isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)


def _dotted(root: str, path: tuple[int | str, ...]) -> str:
    out = root
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else f".{step}"
    return out
