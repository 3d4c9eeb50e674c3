"""The emulator's answers checked against composio_client's own response models.

`assert_answers(endpoint, response)` parses the raw JSON body with the model the SDK itself casts
that endpoint's answer to, in pydantic's strict JSON mode (no coercion: a number sent as a string,
an enum outside its values or a missing required field fails), and then refuses any field the
model does not declare, at any depth (the models allow extras, so `model_validate` alone would let
an invented field through). JSON mode, because these models type enums as `Enum` classes and
timestamps as `datetime`, which strict *Python* validation only accepts as instances.

`RESPONSE_MODELS` is keyed by the emulator's endpoint names (see `http._ROUTES`); add the model of
a new endpoint there. Names for endpoints not routed yet are guesses in the same style.
"""

from __future__ import annotations

from typing import Any

import httpx
from composio_client.types import (
    auth_config_list_response,
    connected_account_delete_response,
    connected_account_list_response,
    connected_account_refresh_response,
    connected_account_retrieve_response,
    connected_account_update_status_response,
    log_create_tool_execution_response,
    log_retrieve_tool_execution_response,
    toolkit_list_response,
    toolkit_retrieve_categories_response,
    toolkit_retrieve_multi_response,
    toolkit_retrieve_response,
)
from composio_client.types.tool_router import (
    session_config_history_response,
    session_create_response,
    session_delete_response,
    session_execute_meta_response,
    session_execute_response,
    session_link_response,
    session_patch_response,
    session_retrieve_response,
    session_search_response,
    session_toolkits_response,
    session_tools_response,
)
from pydantic import BaseModel, RootModel

RESPONSE_MODELS: dict[str, type[BaseModel]] = {
    "session.create": session_create_response.SessionCreateResponse,
    "session.get": session_retrieve_response.SessionRetrieveResponse,
    "session.update": session_patch_response.SessionPatchResponse,
    "session.delete": session_delete_response.SessionDeleteResponse,
    "session.toolkits": session_toolkits_response.SessionToolkitsResponse,
    "session.link": session_link_response.SessionLinkResponse,
    "session.config_history": session_config_history_response.SessionConfigHistoryResponse,
    "toolkits.list": toolkit_list_response.ToolkitListResponse,
    "toolkits.get": toolkit_retrieve_response.ToolkitRetrieveResponse,
    "toolkits.categories": toolkit_retrieve_categories_response.ToolkitRetrieveCategoriesResponse,
    "toolkits.multi": toolkit_retrieve_multi_response.ToolkitRetrieveMultiResponse,
    "session.search": session_search_response.SessionSearchResponse,
    "session.tools": session_tools_response.SessionToolsResponse,
    "connected_accounts.list": connected_account_list_response.ConnectedAccountListResponse,
    "connected_accounts.get": connected_account_retrieve_response.ConnectedAccountRetrieveResponse,
    "session.execute": session_execute_response.SessionExecuteResponse,
    "session.execute_meta": session_execute_meta_response.SessionExecuteMetaResponse,
    "connected_accounts.update_status": (
        connected_account_update_status_response.ConnectedAccountUpdateStatusResponse
    ),
    "connected_accounts.refresh": (
        connected_account_refresh_response.ConnectedAccountRefreshResponse
    ),
    "connected_accounts.delete": connected_account_delete_response.ConnectedAccountDeleteResponse,
    "auth_configs.list": auth_config_list_response.AuthConfigListResponse,
    "logs.tool_execution": log_create_tool_execution_response.LogCreateToolExecutionResponse,
    "logs.tool_execution_get": (
        log_retrieve_tool_execution_response.LogRetrieveToolExecutionResponse
    ),
}


def assert_answers(
    endpoint: str, response: httpx.Response, *, status: int | None = None
) -> BaseModel:
    """`response` is a 2xx (or `status`) whose body is exactly `endpoint`'s composio_client
    response model: strictly valid, and no field the model does not declare. Returns the model."""
    if status is not None:
        assert response.status_code == status, response.text
    else:
        assert response.is_success, response.text
    return assert_model(RESPONSE_MODELS[endpoint], response.content)


def assert_model(model: type[BaseModel], raw: bytes | str) -> BaseModel:
    """`raw` JSON validated strictly by `model`, with no undeclared field at any depth."""
    parsed = model.model_validate_json(raw, strict=True)
    extras = undeclared_fields(parsed)
    assert not extras, f"{model.__name__}: fields the model does not declare: {extras}"
    return parsed


def undeclared_fields(value: Any, path: str = "$") -> list[str]:
    """The paths of every field a model in `value` holds as an extra (not declared)."""
    if isinstance(value, RootModel):
        return undeclared_fields(value.root, path)
    if isinstance(value, BaseModel):
        found = [f"{path}.{key}" for key in value.model_extra or {}]
        for name in type(value).model_fields:
            # Through __dict__: getattr warns for the fields the models mark deprecated.
            found += undeclared_fields(value.__dict__.get(name), f"{path}.{name}")
        return found
    if isinstance(value, list | tuple):
        return [p for i, item in enumerate(value) for p in undeclared_fields(item, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [p for k, item in value.items() for p in undeclared_fields(item, f"{path}.{k}")]
    return []
