"""A session's tools: `GET .../tools` (its meta tools), `POST .../search`, `POST .../execute`
and `POST .../execute_meta`. Executions answer canned results (`canned_tools.py`) and write an
execution log entry (`logs.py`)."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from . import canned_tools as canned
from .errors import ApiError, validation_error
from .http import Response
from .ids import token
from .paging import Query, paginate
from .state import EmulatorState

if TYPE_CHECKING:
    from .canned_tools import CannedTool

SESSION_TOOLS_DEFAULT_LIMIT = 20
SESSION_TOOLS_MAX_LIMIT = 500  # composio_client's SessionToolsParams: "max allowed is 500"
SEARCH_RESULTS_PER_QUERY = 3
_WORD = re.compile(r"[a-z0-9]+")
GUIDANCE = "Execute the primary tool with COMPOSIO_MULTI_EXECUTE_TOOL."


def no_active_connection(slug: str, session_id: str, account: dict[str, Any] | None) -> ApiError:
    """The refusal for a tool whose toolkit has no ACTIVE account for the session's user."""
    why = "" if account is None else f" (connected account {account['id']} is {account['status']})"
    return ApiError(
        400,
        f"No active connection found for toolkit '{slug}'{why}",
        slug="ToolRouterV2_NoActiveConnection",
        suggested_fix=(
            f"Connect the user to {slug} first: POST /api/v3.1/tool_router/session/"
            f"{session_id}/link"
        ),
    )


class ExecutionMixin(EmulatorState):
    """The session endpoints that search and run tools."""

    if TYPE_CHECKING:  # provided by the other parts of Emulator

        def _session_account(self, session: dict[str, Any], slug: str) -> dict[str, Any] | None: ...
        def _session_candidates(
            self, session: dict[str, Any], slug: str
        ) -> list[dict[str, Any]]: ...
        def _write_log(self, **kwargs: Any) -> dict[str, Any]: ...
        def _h_session_link(self, params: dict[str, str], query: Any, body: Any) -> Response: ...

    # GET .../tools -------------------------------------------------------------------------

    def _h_session_tools(self, params: dict[str, str], query: Query, body: Any) -> Response:
        with self._lock:
            session = self._session_or_404(params["session_id"])
            items = [canned.meta_tool_body(s) for s in session["tool_router_tools"]]
            toolkits = self._session_toolkits(session["config"])
            slugs = [tk["slug"] for tk in toolkits]
            for wanted in (session["config"].get("preload") or {}).get("tools") or []:
                tool = canned.find(str(wanted), slugs) if isinstance(wanted, str) else None
                tk = self._toolkit(tool.toolkit) if tool else None
                if tool is not None and tk is not None:
                    items.append(canned.tool_body(tool, tk))
        page = paginate(
            items,
            query,
            default_limit=SESSION_TOOLS_DEFAULT_LIMIT,
            max_limit=SESSION_TOOLS_MAX_LIMIT,
        )
        return Response(200, page, {})

    # POST .../search -----------------------------------------------------------------------

    def _h_session_search(self, params: dict[str, str], query: Any, body: Any) -> Response:
        queries = body.get("queries") if isinstance(body, dict) else None
        if not isinstance(queries, list) or not queries:
            raise validation_error("payload.queries", "Expected a non-empty array")
        use_cases = []
        for i, q in enumerate(queries):
            if not isinstance(q, dict) or not isinstance(q.get("use_case"), str):
                raise validation_error(f"payload.queries.{i}.use_case", "Required")
            use_cases.append(q["use_case"])
        with self._lock:
            session = self._session_or_404(params["session_id"])
            return Response(200, self._search(session, use_cases), {})

    def _search(self, session: dict[str, Any], use_cases: list[str]) -> dict[str, Any]:
        """The search answer: tools ranked by words shared with each use case. Under `_lock`."""
        toolkits = {tk["slug"]: tk for tk in self._session_toolkits(session["config"])}
        tools = [t for slug in toolkits for t in canned.tools_of(slug)]
        results, schemas, used = [], {}, []
        for index, use_case in enumerate(use_cases, start=1):
            words = set(_WORD.findall(use_case.lower()))
            scored = sorted(
                (
                    (len(words & _tool_words(t, toolkits[t.toolkit])), i, t)
                    for i, t in enumerate(tools)
                ),
                key=lambda x: (-x[0], x[1]),
            )
            hits = [t for score, _, t in scored if score > 0][:SEARCH_RESULTS_PER_QUERY]
            for tool in hits:
                schemas[tool.slug] = {
                    "toolkit": tool.toolkit,
                    "tool_slug": tool.slug,
                    "description": tool.description,
                    "input_schema": canned.input_schema(tool),
                }
                if tool.toolkit not in used:
                    used.append(tool.toolkit)
            results.append(
                {
                    "index": index,
                    "use_case": use_case,
                    "primary_tool_slugs": [t.slug for t in hits[:1]],
                    "related_tool_slugs": [t.slug for t in hits[1:]],
                    "toolkits": list(dict.fromkeys(t.toolkit for t in hits)),
                    "execution_guidance": GUIDANCE if hits else None,
                    "recommended_plan_steps": [f"Call {t.slug}" for t in hits[:1]],
                    "known_pitfalls": [],
                    "error": None if hits else "No tool of this session matches the use case",
                }
            )
        now = time.time()
        return {
            "success": True,
            "error": None,
            "results": results,
            "toolkit_connection_statuses": [
                self._connection_status(session, toolkits[s]) for s in used
            ],
            "tool_schemas": schemas,
            "time_info": {
                "current_time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                "current_time_utc_epoch_seconds": int(now),
                "message": "Current time in UTC",
            },
            "session": {"id": session["session_id"], "generate_id": False, "instructions": ""},
            "next_steps_guidance": [
                "Connect the toolkits without an active connection (COMPOSIO_MANAGE_CONNECTIONS).",
                "Then run the tools (COMPOSIO_MULTI_EXECUTE_TOOL).",
            ],
        }

    def _connection_status(self, session: dict[str, Any], tk: dict[str, Any]) -> dict[str, Any]:
        account = None if tk["no_auth"] else self._session_account(session, tk["slug"])
        active = tk["no_auth"] or (account is not None and account["status"] == "ACTIVE")
        if tk["no_auth"]:
            message = f"{tk['slug']} needs no authentication"
        elif account is None:
            message = f"No connected account for {tk['slug']}"
        else:
            message = f"Connected account {account['id']} is {account['status']}"
        accounts = [
            {
                "id": a["id"],
                "alias": a.get("alias"),
                "status": a["status"],
                "created_at": a["created_at"],
                "is_default": account is not None and a["id"] == account["id"],
            }
            for a in ([] if tk["no_auth"] else self._session_candidates(session, tk["slug"]))
        ]
        return {
            "toolkit": tk["slug"],
            "description": tk["description"],
            "has_active_connection": bool(active),
            "status_message": message,
            "accounts": accounts,
        }

    # POST .../execute and .../execute_meta --------------------------------------------------

    def _h_session_execute(self, params: dict[str, str], query: Any, body: Any) -> Response:
        if not isinstance(body, dict):
            raise validation_error("payload", "Expected object")
        tool_slug = body.get("tool_slug")
        if not isinstance(tool_slug, str) or not tool_slug.strip():
            raise validation_error("payload.tool_slug", "Required")
        arguments = _arguments(body)
        account_ref = body.get("account")
        if account_ref is not None and not isinstance(account_ref, str):
            raise validation_error("payload.account", "Expected string")
        with self._lock:
            session = self._session_or_404(params["session_id"])
            if tool_slug.upper() in canned.META_TOOL_SLUGS:
                return Response(200, self._run_meta(session, tool_slug.upper(), arguments), {})
            return Response(200, self._run_tool(session, tool_slug, arguments, account_ref), {})

    def _h_session_execute_meta(self, params: dict[str, str], query: Any, body: Any) -> Response:
        if not isinstance(body, dict):
            raise validation_error("payload", "Expected object")
        slug = body.get("slug")
        if slug not in canned.META_TOOL_SLUGS:
            raise validation_error(
                "payload.slug", f"Expected one of {', '.join(canned.META_TOOL_SLUGS)}"
            )
        arguments = _arguments(body)
        with self._lock:
            session = self._session_or_404(params["session_id"])
            return Response(200, self._run_meta(session, slug, arguments), {})

    def _run_tool(
        self,
        session: dict[str, Any],
        tool_slug: str,
        arguments: dict[str, Any],
        account_ref: str | None,
        parent: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Run one app tool: refuse (ApiError) when the session may not, else a result with a log
        entry (a failed one for missing required arguments). Under `_lock`."""
        enabled = {tk["slug"]: tk for tk in self._session_toolkits(session["config"])}
        tool = canned.find(tool_slug, list(enabled))
        if tool is None:
            known = canned.find(tool_slug, [tool_slug.lower().rsplit("_emulated_ping", 1)[0]])
            if known is not None and self._toolkit(known.toolkit) is not None:
                raise ApiError(
                    400, f"Toolkit '{known.toolkit}' of tool {tool_slug} is not enabled in session"
                )
            raise ApiError(404, f"Tool {tool_slug} not found", slug="Tool_NotFound", code=10404)
        tk = enabled.get(tool.toolkit)
        if tk is None:
            raise ApiError(
                400, f"Toolkit '{tool.toolkit}' of tool {tool.slug} is not enabled in session"
            )
        account = None
        source = "no_auth"
        if not tk["no_auth"]:
            account = self._pick_account(session, tool.toolkit, account_ref)
            if account is None or account["status"] != "ACTIVE":
                raise no_active_connection(tool.toolkit, session["session_id"], account)
            source = "connected_account"
        missing = [p for p in tool.required if arguments.get(p) in (None, "")]
        error = f"Missing required argument(s): {', '.join(missing)}" if missing else None
        data = {} if missing else tool.run(arguments, session["config"]["user_id"])
        entry = self._write_log(
            tool_slug=tool.slug,
            toolkit_slug=tool.toolkit,
            session=session,
            account=account,
            credential_source=source,
            arguments=arguments,
            response=data,
            error=error,
            parent=parent,
        )
        return {
            "result_type": "failed" if missing else "completed",
            "data": data,
            "error": error,
            "log_id": entry["id"],
        }

    def _pick_account(
        self, session: dict[str, Any], slug: str, account_ref: str | None
    ) -> dict[str, Any] | None:
        if account_ref is None:
            return self._session_account(session, slug)
        for account in self._session_candidates(session, slug):
            if account_ref in (account["id"], account.get("alias"), account.get("word_id")):
                return account
        raise ApiError(400, f"No connected account '{account_ref}' for toolkit '{slug}'")

    def _run_meta(
        self, session: dict[str, Any], slug: str, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        """Run a meta tool. Under `_lock`."""
        error: str | None = None
        children: list[dict[str, Any]] = []
        if slug == "COMPOSIO_SEARCH_TOOLS":
            queries = arguments.get("queries") or []
            cases = [
                q["use_case"]
                for q in queries
                if isinstance(q, dict) and isinstance(q.get("use_case"), str)
            ]
            data: dict[str, Any] = self._search(session, cases) if cases else {}
            error = None if cases else "queries: at least one {use_case} is required"
        elif slug == "COMPOSIO_GET_TOOL_SCHEMAS":
            enabled = [tk["slug"] for tk in self._session_toolkits(session["config"])]
            found = [
                t for s in arguments.get("tool_slugs") or [] if (t := canned.find(str(s), enabled))
            ]
            data = {
                "tool_schemas": {
                    t.slug: {
                        "toolkit": t.toolkit,
                        "tool_slug": t.slug,
                        "input_schema": canned.input_schema(t),
                    }
                    for t in found
                }
            }
        elif slug == "COMPOSIO_MANAGE_CONNECTIONS":
            data = {"results": self._manage_connections(session, arguments.get("toolkits") or [])}
        elif slug == "COMPOSIO_MULTI_EXECUTE_TOOL":
            data, children = (
                {"results": []},
                [c for c in arguments.get("tools") or [] if isinstance(c, dict)],
            )
            if not children:
                error = "tools: at least one {tool_slug, arguments} is required"
        else:
            data, error = {}, f"{slug} is not emulated"
        log_id = f"log_{token(16)}"
        failures = 0
        for call in children:
            parent = {"log_id": log_id, "tool_slug": slug}
            child_slug = str(call.get("tool_slug") or "")
            child_args = call.get("arguments") if isinstance(call.get("arguments"), dict) else {}
            try:
                result = self._run_tool(
                    session, child_slug, child_args, call.get("account"), parent
                )
            except ApiError as exc:
                result = {"result_type": "failed", "data": {}, "error": exc.message, "log_id": None}
            failures += result["result_type"] != "completed"
            data["results"].append(
                {
                    "tool_slug": child_slug,
                    "response": {
                        "successful": result["result_type"] == "completed",
                        "data": result["data"],
                        "error": result["error"],
                    },
                    "log_id": result["log_id"],
                }
            )
        if failures:
            error = f"{failures} of {len(children)} tool calls failed"
        self._write_log(
            log_id=log_id,
            tool_slug=slug,
            toolkit_slug="composio",
            session=session,
            account=None,
            credential_source="no_auth",
            arguments=arguments,
            response=data,
            error=error,
        )
        return {
            "result_type": "failed" if error and not children else "completed",
            "data": data,
            "error": error,
            "log_id": log_id,
        }

    def _manage_connections(self, session: dict[str, Any], slugs: list[Any]) -> dict[str, Any]:
        """Each toolkit's connection, with a connect link for those not ACTIVE. Under `_lock`."""
        out: dict[str, Any] = {}
        enabled = {tk["slug"]: tk for tk in self._session_toolkits(session["config"])}
        for raw in slugs:
            slug = str(raw).lower()
            tk = enabled.get(slug)
            if tk is None:
                out[slug] = {"status": "not_enabled"}
                continue
            if tk["no_auth"]:
                out[slug] = {"status": "no_auth"}
                continue
            account = self._session_account(session, slug)
            if account is not None and account["status"] == "ACTIVE":
                out[slug] = {"status": "ACTIVE", "connected_account_id": account["id"]}
                continue
            link = self._h_session_link(
                {"session_id": session["session_id"]}, {}, {"toolkit": slug}
            ).body
            out[slug] = {
                "status": "INITIATED",
                "connected_account_id": link["connected_account_id"],
                "redirect_url": link["redirect_url"],
            }
        return out


def _arguments(body: dict[str, Any]) -> dict[str, Any]:
    arguments = body.get("arguments")
    if arguments is None:
        return {}
    if not isinstance(arguments, dict):
        raise validation_error("payload.arguments", "Expected object")
    return arguments


def _tool_words(tool: CannedTool, tk: dict[str, Any]) -> set[str]:
    text = " ".join(
        (tool.slug.replace("_", " "), tool.name, tool.description, tk["slug"], tk["name"])
    )
    return set(_WORD.findall(text.lower())) - {"the", "a", "of", "to", "for", "in", "and"}
