"""Connected accounts: `POST /tool_router/session/{id}/link`, link completion, test setup."""

from __future__ import annotations

from typing import Any

from .errors import ApiError, unknown_toolkit, validation_error
from .http import CONTROL_PREFIX, Response
from .ids import now_iso, token
from .state import EmulatorState
from .store import Change

CONNECTION_STATUSES = ("ACTIVE", "INITIATED", "FAILED", "EXPIRED")


class AccountsMixin(EmulatorState):
    """The connected accounts of each session, and the connect links that create them."""

    def set_connection(self, session_id: str, toolkit_slug: str, status: str | None) -> None:
        """Set (or with None remove) the connected account of one toolkit in one session."""
        if status is not None and status not in CONNECTION_STATUSES:
            raise ValueError(f"status must be one of {CONNECTION_STATUSES} or None")
        slug = toolkit_slug.lower()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise KeyError(f"unknown session {session_id}")
            connections = dict(session["connections"])
            if status is None:
                connections.pop(slug, None)
            elif slug not in connections:
                connections[slug] = self._new_account(session, slug, self._toolkit(slug), status)
            else:
                connections[slug] = {**connections[slug], "status": status}
            self._replace_connections(session, connections)

    def _replace_connections(
        self, session: dict[str, Any], connections: dict[str, Any], *more: Change
    ) -> None:
        """Store `session` with `connections` (and `more` changes) in one write. Under `_lock`."""
        updated = {**session, "connections": connections}
        self._persist(("put", "session", session["session_id"], updated), *more)
        self._sessions[session["session_id"]] = updated

    def _new_account(
        self, session: dict[str, Any], slug: str, tk: dict[str, Any] | None, status: str
    ) -> dict[str, Any]:
        """A fresh account whose auth config is the session's for `slug`, else a new one."""
        schemes = [s for s in (tk or {}).get("auth_schemes", []) if s != "NO_AUTH"]
        managed = (tk or {}).get("composio_managed_auth_schemes", [])
        scheme = (managed or schemes or ["OAUTH2"])[0]
        auth_config_id = session["config"]["auth_configs"].get(slug) or f"ac_{token()}"
        return {
            "id": f"ca_{token()}",
            "user_id": session["config"]["user_id"],
            "status": status,
            "created_at": now_iso(),
            "auth_config": {
                "id": auth_config_id,
                "auth_scheme": scheme,
                "is_composio_managed": scheme in managed,
            },
        }

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
            connections = dict(session["connections"])
            account = connections.get(slug)
            if account is None or account["status"] != "INITIATED":
                account = self._new_account(session, slug, tk, "INITIATED")
                connections[slug] = account
            link_token = f"lk_{token(16)}"
            callback = callback_url or session["config"]["manage_connections"]["callback_url"]
            link = {"session_id": session["session_id"], "toolkit": slug, "callback_url": callback}
            self._replace_connections(session, connections, ("put", "link", link_token, link))
            self._links[link_token] = link
            body_out = {
                "link_token": link_token,
                "redirect_url": f"{self.base_url}{CONTROL_PREFIX}/connect/{link_token}",
                "connected_account_id": account["id"],
            }
            return Response(201, body_out, {})

    def _complete_link(self, link_token: str, status: str) -> Response:
        """Stand-in for the hosted auth page: marks the connection and follows callback_url."""
        with self._lock:
            link = self._links.get(link_token)
        if link is None:
            raise ApiError(404, "Unknown or expired link token")
        try:
            self.set_connection(link["session_id"], link["toolkit"], status.upper())
        except (KeyError, ValueError) as exc:
            raise ApiError(400, str(exc)) from exc
        with self._lock:
            account = self._sessions[link["session_id"]]["connections"][link["toolkit"]]
        callback = link["callback_url"]
        if callback:
            sep = "&" if "?" in callback else "?"
            outcome = "success" if status.upper() == "ACTIVE" else "failed"
            location = f"{callback}{sep}status={outcome}&connected_account_id={account['id']}"
            return Response(302, None, {"Location": location}, raw=b"")
        html = f"<!doctype html><title>Connected</title><p>{link['toolkit']}: {status}</p>"
        return Response(200, None, {}, raw=html.encode(), content_type="text/html")
