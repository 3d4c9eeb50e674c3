"""How auth configs and connected accounts look in Composio's answers (composio_client's models).

The emulator stores lean records (see `accounts.py`); these functions shape them as
`ConnectedAccountRetrieveResponse`, the items of `ConnectedAccountListResponse` and
`AuthConfigListResponse`, and the `connected_account` of a session-toolkits item.
"""

from __future__ import annotations

from typing import Any

from . import catalog as cat

# Every status composio_client's models allow for a connected account, in lifecycle order.
ACCOUNT_STATUSES = (
    "INITIALIZING",
    "INITIATED",
    "ACTIVE",
    "FAILED",
    "EXPIRED",
    "INACTIVE",
    "REVOKED",
)

# The auth schemes an auth config / account may carry (the models' AuthScheme enum).
AUTH_SCHEMES = (
    "OAUTH2",
    "OAUTH1",
    "API_KEY",
    "BASIC",
    "BILLCOM_AUTH",
    "BEARER_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT",
    "NO_AUTH",
    "BASIC_WITH_JWT",
    "CALCOM_AUTH",
    "SERVICE_ACCOUNT",
    "SAML",
    "DCR_OAUTH",
    "CIMD_OAUTH",
    "S2S_OAUTH2",
)

# `state.val.status` is a union per scheme in the models, and not every (scheme, status) pair
# exists there (BASIC has no FAILED, only OAUTH2 and API_KEY have REVOKED, ...). A pair the models
# lack is shown with EXPIRED in `state.val` (every scheme has it); the account's own `status`
# is always the true one.
_STATE_STATUSES: dict[str, frozenset[str]] = {
    "OAUTH1": frozenset({"INITIALIZING", "INITIATED", "ACTIVE", "FAILED", "EXPIRED", "INACTIVE"}),
    "OAUTH2": frozenset(ACCOUNT_STATUSES),
    "API_KEY": frozenset({"INITIALIZING", "INITIATED", "ACTIVE", "INACTIVE", "REVOKED", "EXPIRED"}),
    "BASIC": frozenset({"INITIALIZING", "INITIATED", "ACTIVE", "INACTIVE", "EXPIRED"}),
    "BEARER_TOKEN": frozenset({"INITIALIZING", "INITIATED", "ACTIVE", "INACTIVE", "EXPIRED"}),
    "GOOGLE_SERVICE_ACCOUNT": frozenset(
        {"INITIALIZING", "INITIATED", "ACTIVE", "INACTIVE", "EXPIRED"}
    ),
    "SERVICE_ACCOUNT": frozenset({"INITIALIZING", "INITIATED", "ACTIVE", "INACTIVE", "EXPIRED"}),
}
_STATE_STATUSES_DEFAULT = frozenset(
    {"INITIALIZING", "INITIATED", "ACTIVE", "FAILED", "EXPIRED", "INACTIVE"}
)

# Fake, obviously-not-secret credential fields each scheme's ACTIVE/INACTIVE state requires.
_MASK = "emu-****"
_CREDENTIALS: dict[str, dict[str, Any]] = {
    "OAUTH1": {"oauth_token": _MASK, "oauth_token_secret": _MASK},
    "OAUTH2": {"access_token": _MASK, "token_type": "Bearer", "scope": []},
    "S2S_OAUTH2": {"access_token": _MASK},
    "DCR_OAUTH": {"client_id": "emu-client", "access_token": _MASK},
    "CIMD_OAUTH": {"client_id": "emu-client", "access_token": _MASK},
    "API_KEY": {"generic_api_key": _MASK},
    "BASIC": {"username": "emu-user"},
    "BASIC_WITH_JWT": {"username": "emu-user", "password": _MASK},
    "BEARER_TOKEN": {"token": _MASK},
    "GOOGLE_SERVICE_ACCOUNT": {"credentials_json": _MASK},
    "BILLCOM_AUTH": {"session_id": _MASK, "dev_key": _MASK},
    "SERVICE_ACCOUNT": {
        "application_id": "emu-app",
        "installation_id": "emu-installation",
        "private_key": _MASK,
    },
}


def _initiated_fields(scheme: str, redirect_url: str) -> dict[str, Any]:
    """What an INITIATED state carries for `scheme` (where the end user is sent)."""
    if scheme == "OAUTH1":
        return {
            "oauth_token": _MASK,
            "oauth_token_secret": _MASK,
            "authUri": redirect_url,
            "redirectUrl": redirect_url,
        }
    if scheme in ("DCR_OAUTH", "CIMD_OAUTH"):
        return {"client_id": "emu-client", "redirect_url": redirect_url}
    if scheme == "OAUTH2":
        return {"redirectUrl": redirect_url}
    if scheme in ("GOOGLE_SERVICE_ACCOUNT", "BILLCOM_AUTH"):
        return {"redirect_url": redirect_url}
    return {}


def state(scheme: str, status: str, *, redirect_url: str, updated_at: str) -> dict[str, Any]:
    """The account's `state` (`{"authScheme", "val": {"status", ...}}`) for the models' union."""
    allowed = _STATE_STATUSES.get(scheme, _STATE_STATUSES_DEFAULT)
    shown = status if status in allowed else "EXPIRED"
    val: dict[str, Any] = {"status": shown}
    if shown in ("ACTIVE", "INACTIVE") or (shown == "FAILED" and scheme == "BASIC_WITH_JWT"):
        val.update(_CREDENTIALS.get(scheme, {}))
    elif shown == "INITIATED":
        val.update(_initiated_fields(scheme, redirect_url))
    elif shown == "EXPIRED":
        val["expired_at"] = updated_at
    elif shown == "FAILED":
        val["error"] = "access_denied"
    return {"authScheme": scheme, "val": val}


def account_body(
    account: dict[str, Any], auth_config: dict[str, Any], *, redirect_url: str
) -> dict[str, Any]:
    """`GET /connected_accounts/{id}` (and, the same, one item of the list)."""
    scheme = auth_config["auth_scheme"]
    return {
        "id": account["id"],
        "user_id": account["user_id"],
        "status": account["status"],
        "status_reason": account["status_reason"],
        "is_disabled": account["is_disabled"],
        "created_at": account["created_at"],
        "updated_at": account["updated_at"],
        "alias": account.get("alias"),
        "word_id": account.get("word_id"),
        "toolkit": {"slug": account["toolkit"]},
        "auth_config": {
            "id": auth_config["id"],
            "auth_scheme": scheme,
            "is_composio_managed": auth_config["is_composio_managed"],
            "is_disabled": auth_config["status"] == "DISABLED",
        },
        "state": state(
            scheme, account["status"], redirect_url=redirect_url, updated_at=account["updated_at"]
        ),
        "data": {},
        "params": {},
        "test_request_endpoint": None,
    }


def session_account(account: dict[str, Any], auth_config: dict[str, Any]) -> dict[str, Any]:
    """The `connected_account` of a session-toolkits item."""
    return {
        "id": account["id"],
        "user_id": account["user_id"],
        "status": account["status"],
        "created_at": account["created_at"],
        "auth_config": {
            "id": auth_config["id"],
            "auth_scheme": auth_config["auth_scheme"],
            "is_composio_managed": auth_config["is_composio_managed"],
        },
    }


def auth_config_body(auth_config: dict[str, Any], connections: int) -> dict[str, Any]:
    """One item of `GET /auth_configs`."""
    slug = auth_config["toolkit"]
    return {
        "id": auth_config["id"],
        "uuid": auth_config["uuid"],
        "type": auth_config["type"],
        "name": auth_config["name"],
        "toolkit": {"slug": slug, "logo": cat.logo_url(slug), "auth_guide_url": None},
        "auth_scheme": auth_config["auth_scheme"],
        "is_composio_managed": auth_config["is_composio_managed"],
        "status": auth_config["status"],
        "created_by": None,
        "created_at": auth_config["created_at"],
        "last_updated_at": auth_config["last_updated_at"],
        "no_of_connections": connections,
        "credentials": {},
        "expected_input_fields": [],
        "restrict_to_following_tools": [],
        "tool_access_config": {
            "tools_for_connected_account_creation": [],
            "tools_available_for_execution": [],
        },
        "is_enabled_for_tool_router": True,
    }
