"""Auth configs and connected accounts, as Composio keeps them: per project, not per session.

- An **auth config** (`ac_...`, persisted kind `auth_config`) says how a toolkit authenticates.
  Each toolkit gets a default one the first time it is needed (Composio-managed when the catalog
  has a managed scheme); a session's `auth_configs` override names another (made on demand as a
  `custom` config when the emulator does not know it yet).
- A **connected account** (`ca_...`, persisted kind `account`) belongs to one user and one auth
  config, so every session of that user sees it. A session's connection for a toolkit is the
  user's account under the session's auth config for it (or among the session's
  `connected_accounts` override): the most recently updated ACTIVE one, else the most recent.
- Lifecycle: INITIALIZING -> INITIATED (a connect link) -> ACTIVE (Allow on the connect page);
  FAILED (Deny), EXPIRED, INACTIVE (disabled), REVOKED. Every change stamps `updated_at`.

Endpoints: `session.link`, `connected_accounts.*`, `auth_configs.list`; the connect page and the
control API's account routes (`control_api.py`) call the methods here.
"""

from __future__ import annotations

import html
import uuid
import zlib
from typing import Any
from urllib.parse import quote

from . import account_shapes as shapes
from .errors import ApiError, unknown_toolkit, validation_error
from .http import CONTROL_PREFIX, Response
from .ids import now_iso, token
from .paging import Query, paginate, query_bool, query_csv, query_first
from .state import EmulatorState
from .store import Change

ACCOUNT_STATUSES = shapes.ACCOUNT_STATUSES
# Kept for callers of the old name: every status `set_connection` accepts.
CONNECTION_STATUSES = ACCOUNT_STATUSES
ACCOUNTS_DEFAULT_LIMIT = 20
ACCOUNTS_MAX_LIMIT = 1000
AUTH_CONFIGS_DEFAULT_LIMIT = 20
AUTH_CONFIGS_MAX_LIMIT = 1000
DENIED_REASON = "The user denied access on the connect page"
DISABLED_REASON = "Disabled through the API"
EXPIRED_REASON = "The provider's token expired"
_UUID_NAMESPACE = uuid.UUID("5b0a5a1e-0000-4000-8000-0000000ac0f1")


def default_auth_config_id(slug: str) -> str:
    """The id of a toolkit's default auth config: stable, so a reset or restart keeps it."""
    return f"ac_{zlib.crc32(slug.encode()):08x}{slug[:4]}"


def account_not_found(account_id: str) -> ApiError:
    return ApiError(
        404,
        f"Connected account {account_id} not found",
        slug="ConnectedAccount_NotFound",
        code=10404,
    )


class AccountsMixin(EmulatorState):
    """Auth configs, connected accounts, connect links and the endpoints that show them."""

    # Test and control helpers -----------------------------------------------------------

    @property
    def accounts(self) -> dict[str, dict[str, Any]]:
        """{account id: stored account} (a copy)."""
        with self._lock:
            return {k: dict(v) for k, v in self._accounts.items()}

    @property
    def auth_configs(self) -> dict[str, dict[str, Any]]:
        """{auth config id: stored auth config} (a copy)."""
        with self._lock:
            return {k: dict(v) for k, v in self._auth_configs.items()}

    def session_account(self, session_id: str, toolkit_slug: str) -> dict[str, Any] | None:
        """The stored account a session uses for a toolkit now, or None."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise KeyError(f"unknown session {session_id}")
            account = self._session_account(session, toolkit_slug.lower())
            return None if account is None else dict(account)

    def set_connection(
        self,
        session_id: str,
        toolkit_slug: str,
        status: str | None,
        status_reason: str | None = None,
    ) -> str | None:
        """Give a session's toolkit an account in `status` (moving the one it uses, else a new
        one), or with None remove every account the session could use for it. Returns the
        account id (None when removed)."""
        if status is not None and status not in ACCOUNT_STATUSES:
            raise ValueError(f"status must be one of {ACCOUNT_STATUSES} or None")
        slug = toolkit_slug.lower()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise KeyError(f"unknown session {session_id}")
            if status is None:
                gone = self._session_candidates(session, slug)
                self._persist(*(("delete", "account", a["id"], None) for a in gone))
                for account in gone:
                    del self._accounts[account["id"]]
                return None
            account = self._session_account(session, slug)
            if account is not None:
                self._put(self._moved(account, status, status_reason))
                return account["id"]
            auth_config, changes = self._ensure_auth_config(
                slug, session["config"]["auth_configs"].get(slug)
            )
            account = self._new_account(
                session["config"]["user_id"], slug, auth_config["id"], status, status_reason
            )
            self._put(account, *changes)
            return account["id"]

    def create_account(
        self,
        user_id: str,
        toolkit_slug: str,
        status: str = "ACTIVE",
        *,
        auth_config_id: str | None = None,
        status_reason: str | None = None,
    ) -> str:
        """A new account of `user_id` for a toolkit (under its default auth config unless one is
        named); returns its id. Raises KeyError for an unknown toolkit."""
        if status not in ACCOUNT_STATUSES:
            raise ValueError(f"status must be one of {ACCOUNT_STATUSES}")
        slug = toolkit_slug.lower()
        with self._lock:
            if self._toolkit(slug) is None:
                raise KeyError(f"unknown toolkit {slug}")
            auth_config, changes = self._ensure_auth_config(slug, auth_config_id)
            account = self._new_account(user_id, slug, auth_config["id"], status, status_reason)
            self._put(account, *changes)
            return account["id"]

    def set_account_status(
        self, account_id: str, status: str, status_reason: str | None = None
    ) -> dict[str, Any]:
        """Move one account to any status; returns the stored account. KeyError if unknown."""
        if status not in ACCOUNT_STATUSES:
            raise ValueError(f"status must be one of {ACCOUNT_STATUSES}")
        with self._lock:
            account = self._accounts.get(account_id)
            if account is None:
                raise KeyError(f"unknown connected account {account_id}")
            moved = self._moved(account, status, status_reason)
            self._put(moved)
            return dict(moved)

    def expire_accounts(
        self,
        *,
        user_id: str | None = None,
        account_ids: list[str] | None = None,
        toolkit_slug: str | None = None,
        status_reason: str = EXPIRED_REASON,
    ) -> list[str]:
        """Expire the ACTIVE (and INITIATED) accounts matching every filter given; at least one
        filter is required. Returns the ids expired."""
        if user_id is None and account_ids is None and toolkit_slug is None:
            raise ValueError("name a user_id, account_ids or a toolkit")
        wanted = None if account_ids is None else set(account_ids)
        with self._lock:
            hits = [
                a
                for a in self._accounts.values()
                if a["status"] in ("ACTIVE", "INITIATED")
                and (user_id is None or a["user_id"] == user_id)
                and (wanted is None or a["id"] in wanted)
                and (toolkit_slug is None or a["toolkit"] == toolkit_slug.lower())
            ]
            self._put(*(self._moved(a, "EXPIRED", status_reason) for a in hits))
            return [a["id"] for a in hits]

    # Records -------------------------------------------------------------------------------

    def _tick(self) -> int:
        """A number larger than any before: orders updates made within one millisecond."""
        self._seq = max(self._seq, max((a["seq"] for a in self._accounts.values()), default=0))
        self._seq += 1
        return self._seq

    def _put(self, *accounts_and_changes: dict[str, Any] | Change) -> None:
        """Store accounts (dicts) and other changes (tuples) in one write. Under `_lock`."""
        accounts = [a for a in accounts_and_changes if isinstance(a, dict)]
        more = [c for c in accounts_and_changes if isinstance(c, tuple)]
        self._persist(*more, *(("put", "account", a["id"], a) for a in accounts))
        for change in more:
            if change[1] == "auth_config":
                self._auth_configs[change[2]] = change[3]
            elif change[1] == "link":
                self._links[change[2]] = change[3]
        for account in accounts:
            self._accounts[account["id"]] = account

    def _new_account(
        self,
        user_id: str,
        slug: str,
        auth_config_id: str,
        status: str,
        status_reason: str | None = None,
    ) -> dict[str, Any]:
        now = now_iso()
        return {
            "id": f"ca_{token()}",
            "user_id": user_id,
            "toolkit": slug,
            "auth_config_id": auth_config_id,
            "status": status,
            "status_reason": status_reason,
            "is_disabled": status == "INACTIVE",
            "alias": None,
            "word_id": f"{slug}_{token(6)}",
            "created_at": now,
            "updated_at": now,
            "seq": self._tick(),
        }

    def _moved(
        self, account: dict[str, Any], status: str, status_reason: str | None
    ) -> dict[str, Any]:
        """A copy of `account` in `status` (INACTIVE is the disabled state)."""
        return {
            **account,
            "status": status,
            "status_reason": status_reason,
            "is_disabled": status == "INACTIVE",
            "updated_at": now_iso(),
            "seq": self._tick(),
        }

    def _ensure_auth_config(
        self, slug: str, auth_config_id: str | None
    ) -> tuple[dict[str, Any], list[Change]]:
        """The auth config `auth_config_id` (or the toolkit's default), made if unknown, and the
        change that stores a new one (none for a known one). Under `_lock`."""
        config_id = auth_config_id or default_auth_config_id(slug)
        known = self._auth_configs.get(config_id)
        if known is not None:
            return known, []
        tk = self._toolkit(slug) or {"slug": slug, "name": slug, "auth_schemes": []}
        schemes = [s for s in tk.get("auth_schemes", []) if s in shapes.AUTH_SCHEMES]
        managed = [s for s in tk.get("composio_managed_auth_schemes", []) if s in schemes]
        if auth_config_id is None:
            scheme = (managed or [s for s in schemes if s != "NO_AUTH"] or ["OAUTH2"])[0]
        else:
            scheme = ([s for s in schemes if s != "NO_AUTH"] or ["OAUTH2"])[0]
        is_managed = auth_config_id is None and scheme in managed
        now = now_iso()
        record = {
            "id": config_id,
            "uuid": str(uuid.uuid5(_UUID_NAMESPACE, config_id)),
            "toolkit": slug,
            "type": "default" if auth_config_id is None else "custom",
            "name": f"{tk['name']} {'(Composio managed)' if is_managed else 'auth config'}",
            "auth_scheme": scheme,
            "is_composio_managed": is_managed,
            "status": "ENABLED",
            "created_at": now,
            "last_updated_at": now,
        }
        return record, [("put", "auth_config", config_id, record)]

    # What a session sees -------------------------------------------------------------------

    def _session_candidates(self, session: dict[str, Any], slug: str) -> list[dict[str, Any]]:
        """The accounts a session may use for a toolkit. Under `_lock`."""
        config = session["config"]
        pinned = (config.get("connected_accounts") or {}).get(slug)
        if pinned:
            return [self._accounts[i] for i in pinned if i in self._accounts]
        auth_config_id = (config.get("auth_configs") or {}).get(slug) or default_auth_config_id(
            slug
        )
        return [
            a
            for a in self._accounts.values()
            if a["user_id"] == config["user_id"] and a["auth_config_id"] == auth_config_id
        ]

    def _session_account(self, session: dict[str, Any], slug: str) -> dict[str, Any] | None:
        """The account a session uses for a toolkit: the latest ACTIVE one, else the latest."""
        candidates = self._session_candidates(session, slug)
        active = [a for a in candidates if a["status"] == "ACTIVE"]
        return max(active or candidates, key=lambda a: a["seq"], default=None)

    def _session_connection(self, session: dict[str, Any], slug: str) -> dict[str, Any] | None:
        """The `connected_account` of a session-toolkits item. Under `_lock`."""
        account = self._session_account(session, slug)
        if account is None:
            return None
        return shapes.session_account(account, self._account_auth_config(account))

    def _account_auth_config(self, account: dict[str, Any]) -> dict[str, Any]:
        known = self._auth_configs.get(account["auth_config_id"])
        if known is not None:
            return known
        made, _ = self._ensure_auth_config(account["toolkit"], account["auth_config_id"])
        return made

    def _account_body(self, account: dict[str, Any]) -> dict[str, Any]:
        redirect = f"{self.base_url}{CONTROL_PREFIX}/connect/{account.get('link_token') or ''}"
        return shapes.account_body(
            account, self._account_auth_config(account), redirect_url=redirect
        )

    # State file: accounts kept inside sessions by older emulators ---------------------------

    def _migrate_session_connections(self) -> None:
        """Move the `connections` an older state file kept in each session to the user's
        accounts (and their auth configs), in one write. Under `_lock`."""
        changes: list[Change] = []
        for session in list(self._sessions.values()):
            if "connections" not in session:
                continue
            config = session["config"]
            for slug, old in (session["connections"] or {}).items():
                override = (config.get("auth_configs") or {}).get(slug)
                auth_config, made = self._ensure_auth_config(slug, override)
                for _op, _kind, key, record in made:
                    self._auth_configs[key] = record
                changes += made
                if old.get("id") in self._accounts:
                    continue
                created = old.get("created_at") or now_iso()
                status = old.get("status") if old.get("status") in ACCOUNT_STATUSES else "FAILED"
                account = {
                    **self._new_account(
                        old.get("user_id") or config["user_id"], slug, auth_config["id"], status
                    ),
                    "id": old.get("id") or f"ca_{token()}",
                    "created_at": created,
                    "updated_at": created,
                }
                self._accounts[account["id"]] = account
                changes.append(("put", "account", account["id"], account))
            trimmed = {k: v for k, v in session.items() if k != "connections"}
            self._sessions[session["session_id"]] = trimmed
            changes.append(("put", "session", session["session_id"], trimmed))
        if changes:
            self._persist(*changes)

    # session.link and the connect page -----------------------------------------------------

    def _h_session_link(self, params: dict[str, str], query: Any, body: Any) -> Response:
        if not isinstance(body, dict):
            raise validation_error("payload", "Expected object")
        toolkit = body.get("toolkit")
        if not isinstance(toolkit, str) or not toolkit.strip():
            raise validation_error("payload.toolkit", "Required")
        callback_url = body.get("callback_url")
        if callback_url is not None and not isinstance(callback_url, str):
            raise validation_error("payload.callback_url", "Expected string")
        slug = toolkit.strip().lower()
        with self._lock:
            session = self._session_or_404(params["session_id"])
            tk = self._toolkit(slug)
            if tk is None:
                raise ApiError(400, f"Toolkit '{slug}' not found", errors=[unknown_toolkit(slug)])
            if tk not in self._session_toolkits(session["config"]):
                raise ApiError(400, f"Toolkit '{slug}' is not enabled in session")
            if tk["no_auth"]:
                raise ApiError(400, f"Toolkit '{slug}' does not require authentication")
            account = self._session_account(session, slug)
            changes: list[Change] = []
            if account is None or account["status"] != "INITIATED":
                auth_config, changes = self._ensure_auth_config(
                    slug, session["config"]["auth_configs"].get(slug)
                )
                account = self._new_account(
                    session["config"]["user_id"], slug, auth_config["id"], "INITIATED"
                )
            link_token = f"lk_{token(16)}"
            callback = callback_url or session["config"]["manage_connections"]["callback_url"]
            link = {
                "session_id": session["session_id"],
                "toolkit": slug,
                "callback_url": callback,
                "account_id": account["id"],
            }
            account = {**account, "link_token": link_token}
            self._put(account, *changes, ("put", "link", link_token, link))
            body_out = {
                "link_token": link_token,
                "redirect_url": f"{self.base_url}{CONTROL_PREFIX}/connect/{link_token}",
                "connected_account_id": account["id"],
            }
            return Response(201, body_out, {})

    def _connect_page(self, link_token: str, query: Query) -> Response:
        """The stand-in for Composio's hosted auth page: `GET /_emulator/connect/{token}` shows
        an Allow / Deny form; `?decision=allow|deny` (the form) or `?status=STATUS` completes."""
        decision = (query_first(query, "decision") or "").lower()
        status = query_first(query, "status")
        with self._lock:
            link = self._links.get(link_token)
            if link is None:
                raise ApiError(404, "Unknown or expired link token")
            account = self._link_account(link)
        if decision == "allow":
            return self._complete_link(link_token, "ACTIVE")
        if decision == "deny":
            return self._complete_link(link_token, "FAILED", DENIED_REASON)
        if decision:
            raise ApiError(400, "decision must be allow or deny")
        if status:
            return self._complete_link(link_token, status.upper())
        return _html(
            200,
            "Connect " + link["toolkit"],
            f"<h1>Connect {html.escape(link['toolkit'])}</h1>"
            f"<p>Composio emulator: allow this app to use your {html.escape(link['toolkit'])} "
            f"account for user <code>{html.escape(account['user_id'] if account else '?')}"
            "</code>?</p>"
            f'<form method="get" action="{CONTROL_PREFIX}/connect/{quote(link_token)}">'
            '<button type="submit" name="decision" value="allow">Allow</button> '
            '<button type="submit" name="decision" value="deny">Deny</button>'
            "</form>",
        )

    def _link_account(self, link: dict[str, Any]) -> dict[str, Any] | None:
        """The account a link completes (links of older state files name only the session)."""
        if link.get("account_id") in self._accounts:
            return self._accounts[link["account_id"]]
        session = self._sessions.get(link.get("session_id") or "")
        return None if session is None else self._session_account(session, link["toolkit"])

    def _complete_link(self, link_token: str, status: str, reason: str | None = None) -> Response:
        """Move the link's account to `status`, then follow the callback URL (or say so)."""
        if status not in ACCOUNT_STATUSES:
            raise ApiError(400, f"status must be one of {ACCOUNT_STATUSES}")
        with self._lock:
            link = self._links.get(link_token)
            if link is None:
                raise ApiError(404, "Unknown or expired link token")
            account = self._link_account(link)
            if account is None:
                session = self._sessions.get(link.get("session_id") or "")
                if session is None:
                    raise ApiError(404, "The link's session and account are gone")
                auth_config, changes = self._ensure_auth_config(
                    link["toolkit"], session["config"]["auth_configs"].get(link["toolkit"])
                )
                account = self._new_account(
                    session["config"]["user_id"], link["toolkit"], auth_config["id"], status
                )
                self._put(account, *changes)
            account = self._moved(account, status, reason)
            self._put(account)
        callback = link["callback_url"]
        if callback:
            sep = "&" if "?" in callback else "?"
            outcome = "success" if status == "ACTIVE" else "failed"
            location = f"{callback}{sep}status={outcome}&connected_account_id={account['id']}"
            return Response(302, None, {"Location": location}, raw=b"")
        words = "connected" if status == "ACTIVE" else f"not connected ({status})"
        return _html(
            200,
            "Connected" if status == "ACTIVE" else "Not connected",
            f"<p>{html.escape(link['toolkit'])}: {html.escape(words)}. "
            "You may close this page.</p>",
        )

    # /connected_accounts -------------------------------------------------------------------

    def _h_connected_accounts_list(
        self, params: dict[str, str], query: Query, body: Any
    ) -> Response:
        statuses = query_csv(query, "statuses")
        for status in statuses or []:
            if status not in ACCOUNT_STATUSES:
                raise validation_error("query.statuses", f"Invalid enum value '{status}'")
        order_by = query_first(query, "order_by") or "created_at"
        if order_by not in ("created_at", "updated_at"):
            raise validation_error("query.order_by", "Expected 'created_at' | 'updated_at'")
        direction = query_first(query, "order_direction") or "desc"
        if direction not in ("asc", "desc"):
            raise validation_error("query.order_direction", "Expected 'asc' | 'desc'")
        filters = {
            "user_id": query_csv(query, "user_ids"),
            "toolkit": [s.lower() for s in query_csv(query, "toolkit_slugs") or []] or None,
            "status": statuses,
            "auth_config_id": query_csv(query, "auth_config_ids"),
            "id": query_csv(query, "connected_account_ids"),
        }
        with self._lock:
            accounts = [
                a
                for a in self._accounts.values()
                if all(v is None or a[k] in v for k, v in filters.items())
            ]
            key = "seq" if order_by == "updated_at" else "created_at"
            accounts.sort(key=lambda a: (a[key], a["seq"]), reverse=direction == "desc")
            items = [self._account_body(a) for a in accounts]
        page = paginate(
            items, query, default_limit=ACCOUNTS_DEFAULT_LIMIT, max_limit=ACCOUNTS_MAX_LIMIT
        )
        return Response(200, page, {})

    def _h_connected_accounts_get(self, params: dict[str, str], query: Any, body: Any) -> Response:
        with self._lock:
            account = self._accounts.get(params["account_id"])
            if account is None:
                raise account_not_found(params["account_id"])
            return Response(200, self._account_body(account), {})

    def _h_connected_accounts_update_status(
        self, params: dict[str, str], query: Any, body: Any
    ) -> Response:
        enabled = body.get("enabled") if isinstance(body, dict) else None
        if not isinstance(enabled, bool):
            raise validation_error("payload.enabled", "Expected boolean")
        with self._lock:
            account = self._accounts.get(params["account_id"])
            if account is None:
                raise account_not_found(params["account_id"])
            if not enabled and account["status"] != "INACTIVE":
                self._put(self._moved(account, "INACTIVE", DISABLED_REASON))
            elif enabled and account["status"] == "INACTIVE":
                self._put(self._moved(account, "ACTIVE", None))
            return Response(200, {"success": True}, {})

    def _h_connected_accounts_refresh(
        self, params: dict[str, str], query: Query, body: Any
    ) -> Response:
        """Start the account's authorization again: INITIATED, with a new connect link."""
        redirect = (body.get("redirect_url") if isinstance(body, dict) else None) or query_first(
            query, "redirect_url"
        )
        if redirect is not None and not isinstance(redirect, str):
            raise validation_error("payload.redirect_url", "Expected string")
        with self._lock:
            account = self._accounts.get(params["account_id"])
            if account is None:
                raise account_not_found(params["account_id"])
            link_token = f"lk_{token(16)}"
            link = {
                "session_id": None,
                "toolkit": account["toolkit"],
                "callback_url": redirect,
                "account_id": account["id"],
            }
            moved = {**self._moved(account, "INITIATED", None), "link_token": link_token}
            self._put(moved, ("put", "link", link_token, link))
            answer = {
                "id": moved["id"],
                "status": moved["status"],
                "redirect_url": f"{self.base_url}{CONTROL_PREFIX}/connect/{link_token}",
            }
            return Response(200, answer, {})

    def _h_connected_accounts_delete(
        self, params: dict[str, str], query: Any, body: Any
    ) -> Response:
        with self._lock:
            account_id = params["account_id"]
            if account_id not in self._accounts:
                raise account_not_found(account_id)
            self._persist(("delete", "account", account_id, None))
            del self._accounts[account_id]
            return Response(200, {"success": True}, {})

    # /auth_configs -------------------------------------------------------------------------

    def _h_auth_configs_list(self, params: dict[str, str], query: Query, body: Any) -> Response:
        managed = query_first(query, "is_composio_managed")
        wanted_managed = None if managed in (None, "") else query_bool(query, "is_composio_managed")
        slugs = [s.lower() for s in query_csv(query, "toolkit_slug") or []] or None
        show_disabled = query_bool(query, "show_disabled")
        search = (query_first(query, "search") or "").strip().lower()
        with self._lock:
            counts: dict[str, int] = {}
            for account in self._accounts.values():
                counts[account["auth_config_id"]] = counts.get(account["auth_config_id"], 0) + 1
            configs = [
                c
                for c in self._auth_configs.values()
                if (wanted_managed is None or c["is_composio_managed"] == wanted_managed)
                and (slugs is None or c["toolkit"] in slugs)
                and (show_disabled or c["status"] == "ENABLED")
                and (not search or search in c["name"].lower() or search in c["id"].lower())
            ]
            items = [shapes.auth_config_body(c, counts.get(c["id"], 0)) for c in configs]
        page = paginate(
            items, query, default_limit=AUTH_CONFIGS_DEFAULT_LIMIT, max_limit=AUTH_CONFIGS_MAX_LIMIT
        )
        return Response(200, page, {})


def _html(status: int, title: str, body: str) -> Response:
    page = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<body>{body}</body></html>"
    )
    return Response(status, None, {}, raw=page.encode(), content_type="text/html; charset=utf-8")
