"""Toolkit catalog: load the shipped catalog.json and shape entries like Composio's API."""

from __future__ import annotations

import json
import uuid
import zlib
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).with_name("catalog.json")

# Fixed timestamps and version keep every response deterministic across runs.
CATALOG_TIMESTAMP = "2025-07-29T00:00:00.000Z"
TOOLKIT_VERSION = "20250729_00"
LOGO_BASE = "https://logos.composio.dev/api"
_UUID_NAMESPACE = uuid.UUID("5b0a5a1e-0000-4000-8000-00000c0a9051")


def load_catalog(path: Path = CATALOG_PATH) -> list[dict[str, Any]]:
    """Return the toolkit entries of the shipped catalog (slug, name, auth_schemes, ...)."""
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    return list(data["toolkits"])


def normalize_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults so tests may pass minimal dicts such as {"slug": "github"}."""
    slug = str(entry["slug"]).lower()
    auth_schemes = list(entry.get("auth_schemes") or [])
    return {
        "slug": slug,
        "name": entry.get("name") or slug.replace("_", " ").title(),
        "auth_schemes": auth_schemes,
        "composio_managed_auth_schemes": list(entry.get("composio_managed_auth_schemes") or []),
        "no_auth": bool(entry.get("no_auth", auth_schemes in ([], ["NO_AUTH"]))),
        "categories": [dict(c) for c in entry.get("categories") or []],
        "description": entry.get("description") or "",
    }


def _tools_count(slug: str) -> int:
    # Not in the catalog; a stable made-up number so the field has a plausible value.
    return zlib.crc32(slug.encode()) % 120 + 5


def _toolkit_id(slug: str) -> str:
    return str(uuid.uuid5(_UUID_NAMESPACE, slug))


def logo_url(slug: str) -> str:
    return f"{LOGO_BASE}/{slug}"


def toolkit_list_item(tk: dict[str, Any]) -> dict[str, Any]:
    """One item of GET /api/v3.1/toolkits."""
    return {
        "slug": tk["slug"],
        "name": tk["name"],
        "auth_schemes": list(tk["auth_schemes"]),
        "composio_managed_auth_schemes": list(tk["composio_managed_auth_schemes"]),
        "no_auth": tk["no_auth"],
        "auth_guide_url": None,
        "is_local_toolkit": False,
        "type": "native",
        "deprecated": {"toolkitId": _toolkit_id(tk["slug"])},
        "meta": _meta(
            tk, categories=[{"id": c["id"], "name": c["name"]} for c in tk["categories"]]
        ),
    }


def _meta(tk: dict[str, Any], **varying: Any) -> dict[str, Any]:
    """A toolkit's `meta`, as the list and the detail give it: `varying` are the keys they give
    differently (the categories' shape; the detail's available versions)."""
    return {
        "description": tk["description"],
        "logo": logo_url(tk["slug"]),
        "app_url": None,
        **varying,
        "tools_count": _tools_count(tk["slug"]),
        "triggers_count": 0,
        "created_at": CATALOG_TIMESTAMP,
        "updated_at": CATALOG_TIMESTAMP,
        "version": TOOLKIT_VERSION,
    }


def _auth_config_detail(scheme: str) -> dict[str, Any]:
    empty = {"required": [], "optional": []}
    return {
        "mode": scheme,
        "name": scheme.replace("_", " ").title(),
        "fields": {
            "auth_config_creation": dict(empty),
            "connected_account_initiation": dict(empty),
        },
        "required_scopes": [],
        "proxy": None,
    }


def toolkit_detail(tk: dict[str, Any]) -> dict[str, Any]:
    """GET /api/v3.1/toolkits/{slug}."""
    schemes = [s for s in tk["auth_schemes"] if s != "NO_AUTH"]
    return {
        "slug": tk["slug"],
        "name": tk["name"],
        "enabled": True,
        "is_local_toolkit": False,
        "type": "native",
        "auth_guide_url": None,
        # base_url / get_current_user_endpoint(_method) are left out, not null: composio_client
        # makes them optional, and @composio/core wants a string when one is present.
        "composio_managed_auth_schemes": list(tk["composio_managed_auth_schemes"]),
        "composio_managed_auth": [
            {"mode": s, "scopes": {"available": []}, "user_scopes": None}
            for s in tk["composio_managed_auth_schemes"]
        ],
        "auth_config_details": [_auth_config_detail(s) for s in schemes],
        "deprecated": {
            "toolkitId": _toolkit_id(tk["slug"]),
            "getCurrentUserEndpoint": None,
            "rawProxyInfoByAuthSchemes": [],
        },
        "meta": _meta(
            tk,
            available_versions=[TOOLKIT_VERSION],
            categories=[{"name": c["name"], "slug": c["id"]} for c in tk["categories"]],
        ),
    }


def session_toolkit_item(
    tk: dict[str, Any], connected_account: dict[str, Any] | None
) -> dict[str, Any]:
    """One item of GET /api/v3.1/tool_router/session/{id}/toolkits."""
    return {
        "slug": tk["slug"],
        "name": tk["name"],
        "enabled": True,
        "is_no_auth": tk["no_auth"],
        "composio_managed_auth_schemes": list(tk["composio_managed_auth_schemes"]),
        "meta": {"logo": logo_url(tk["slug"]), "description": tk["description"]},
        "connected_account": dict(connected_account) if connected_account else None,
    }


def matches_search(tk: dict[str, Any], term: str) -> bool:
    term = term.strip().lower()
    if not term:
        return True
    return any(term in tk[field].lower() for field in ("slug", "name", "description"))


def matches_category(tk: dict[str, Any], category: str) -> bool:
    wanted = category.strip().lower()
    return any(wanted in (c["id"].lower(), c["name"].lower()) for c in tk["categories"])
