"""The tools the emulator can "execute": a few per well-known toolkit, one stand-in for the rest.

Results are canned: a function of the tool, its arguments and the user, so a run is reproducible.
Nothing reaches any real service. Slugs of the named toolkits are Composio's own; the stand-in
`<TOOLKIT>_EMULATED_PING` exists only in the emulator.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import catalog as cat

META_TOOL_SLUGS = (
    "COMPOSIO_SEARCH_TOOLS",
    "COMPOSIO_MULTI_EXECUTE_TOOL",
    "COMPOSIO_MANAGE_CONNECTIONS",
    "COMPOSIO_WAIT_FOR_CONNECTIONS",
    "COMPOSIO_REMOTE_WORKBENCH",
    "COMPOSIO_REMOTE_BASH_TOOL",
    "COMPOSIO_GET_TOOL_SCHEMAS",
)
META_DESCRIPTIONS = {
    "COMPOSIO_SEARCH_TOOLS": "Search the session's toolkits for tools that fit a use case.",
    "COMPOSIO_MULTI_EXECUTE_TOOL": "Execute one or more tools of the session in one call.",
    "COMPOSIO_MANAGE_CONNECTIONS": "Check the user's connections and get connect links.",
    "COMPOSIO_WAIT_FOR_CONNECTIONS": "Wait until the user finishes connecting toolkits.",
    "COMPOSIO_REMOTE_WORKBENCH": "Run Python in a remote sandbox.",
    "COMPOSIO_REMOTE_BASH_TOOL": "Run a shell command in a remote sandbox.",
    "COMPOSIO_GET_TOOL_SCHEMAS": "Get the input schemas of tools by slug.",
}
META_PARAMETERS: dict[str, dict[str, Any]] = {
    "COMPOSIO_SEARCH_TOOLS": {
        "queries": {"type": "array", "items": {"type": "object"}, "description": "Use cases"}
    },
    "COMPOSIO_MULTI_EXECUTE_TOOL": {
        "tools": {"type": "array", "items": {"type": "object"}, "description": "Tool calls"}
    },
    "COMPOSIO_MANAGE_CONNECTIONS": {
        "toolkits": {"type": "array", "items": {"type": "string"}, "description": "Toolkits"}
    },
    "COMPOSIO_GET_TOOL_SCHEMAS": {
        "tool_slugs": {"type": "array", "items": {"type": "string"}, "description": "Slugs"}
    },
}
TOOL_VERSION = "20250729_00"

Result = Callable[[dict[str, Any], str], dict[str, Any]]


@dataclass(frozen=True)
class CannedTool:
    slug: str
    toolkit: str
    name: str
    description: str
    parameters: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    result: Result | None = None
    tags: tuple[str, ...] = ()

    def run(self, arguments: dict[str, Any], user_id: str) -> dict[str, Any]:
        if self.result is None:
            return {"ok": True, "toolkit": self.toolkit, "echo": arguments}
        return self.result(arguments, user_id)


def _n(*parts: str) -> int:
    """A small stable number from `parts` (ids, counts)."""
    return zlib.crc32("/".join(parts).encode()) % 9000 + 1000


def _github_user(args: dict[str, Any], user: str) -> dict[str, Any]:
    return {"login": f"{user}-gh", "id": _n("gh", user), "public_repos": _n("repos", user) % 40}


def _github_repos(args: dict[str, Any], user: str) -> dict[str, Any]:
    names = ["api", "web", "infra"][: int(args.get("per_page") or 3)]
    return {
        "repositories": [{"full_name": f"{user}-gh/{n}", "private": n == "infra"} for n in names]
    }


def _github_issue(args: dict[str, Any], user: str) -> dict[str, Any]:
    number = _n("issue", str(args.get("repo")), str(args.get("title"))) % 500 + 1
    return {
        "number": number,
        "title": args["title"],
        "state": "open",
        "html_url": f"https://github.com/{args['owner']}/{args['repo']}/issues/{number}",
    }


def _gmail_fetch(args: dict[str, Any], user: str) -> dict[str, Any]:
    count = min(int(args.get("max_results") or 2), 5)
    return {
        "messages": [
            {"messageId": f"18c{_n('mail', user, str(i)):x}", "subject": f"Weekly update #{i + 1}"}
            for i in range(count)
        ],
        "resultSizeEstimate": count,
    }


def _gmail_send(args: dict[str, Any], user: str) -> dict[str, Any]:
    return {"id": f"18d{_n('sent', user, str(args['recipient_email'])):x}", "labelIds": ["SENT"]}


def _slack_channels(args: dict[str, Any], user: str) -> dict[str, Any]:
    return {
        "ok": True,
        "channels": [{"id": "C0GENERAL", "name": "general"}, {"id": "C0RANDOM", "name": "random"}],
    }


def _slack_send(args: dict[str, Any], user: str) -> dict[str, Any]:
    return {"ok": True, "channel": args["channel"], "ts": f"1720000000.{_n('ts', user):06d}"}


def _notion_search(args: dict[str, Any], user: str) -> dict[str, Any]:
    query = str(args.get("query") or "")
    return {
        "results": [
            {"object": "page", "id": f"{_n('page', query):x}-emu", "title": query or "Home"}
        ]
    }


def _linear_issues(args: dict[str, Any], user: str) -> dict[str, Any]:
    return {
        "issues": [
            {
                "identifier": f"ENG-{_n('lin', user) % 300}",
                "title": "Fix login redirect",
                "state": "In Progress",
            }
        ]
    }


def _calendar_events(args: dict[str, Any], user: str) -> dict[str, Any]:
    return {
        "items": [
            {
                "id": f"ev{_n('cal', user):x}",
                "summary": "Team sync",
                "start": {"dateTime": "2025-07-29T09:00:00Z"},
            }
        ]
    }


def _jira_search(args: dict[str, Any], user: str) -> dict[str, Any]:
    return {
        "total": 1,
        "issues": [
            {"key": f"OPS-{_n('jira', user) % 900}", "fields": {"summary": "Rotate credentials"}}
        ],
    }


def _hubspot_contacts(args: dict[str, Any], user: str) -> dict[str, Any]:
    return {"results": [{"id": str(_n("hs", user)), "properties": {"email": "jane@example.com"}}]}


_NAMED: list[CannedTool] = [
    CannedTool(
        "GITHUB_GET_THE_AUTHENTICATED_USER",
        "github",
        "Get the authenticated user",
        "Get the profile of the authenticated GitHub user.",
        result=_github_user,
        tags=("readOnlyHint",),
    ),
    CannedTool(
        "GITHUB_LIST_REPOSITORIES_FOR_THE_AUTHENTICATED_USER",
        "github",
        "List repositories for the authenticated user",
        "List the repositories the authenticated GitHub user can access.",
        {"per_page": "integer"},
        result=_github_repos,
        tags=("readOnlyHint",),
    ),
    CannedTool(
        "GITHUB_CREATE_AN_ISSUE",
        "github",
        "Create an issue",
        "Create an issue in a GitHub repository.",
        {"owner": "string", "repo": "string", "title": "string", "body": "string"},
        ("owner", "repo", "title"),
        _github_issue,
    ),
    CannedTool(
        "GMAIL_FETCH_EMAILS",
        "gmail",
        "Fetch emails",
        "Fetch a list of email messages from the user's Gmail inbox.",
        {"max_results": "integer", "query": "string"},
        result=_gmail_fetch,
        tags=("readOnlyHint",),
    ),
    CannedTool(
        "GMAIL_SEND_EMAIL",
        "gmail",
        "Send email",
        "Send an email from the user's Gmail account.",
        {"recipient_email": "string", "subject": "string", "body": "string"},
        ("recipient_email", "body"),
        _gmail_send,
    ),
    CannedTool(
        "SLACK_LIST_ALL_CHANNELS",
        "slack",
        "List all channels",
        "List the channels of the Slack workspace.",
        result=_slack_channels,
        tags=("readOnlyHint",),
    ),
    CannedTool(
        "SLACK_SEND_MESSAGE",
        "slack",
        "Send message",
        "Post a message to a Slack channel.",
        {"channel": "string", "text": "string"},
        ("channel", "text"),
        _slack_send,
    ),
    CannedTool(
        "NOTION_SEARCH_NOTION_PAGE",
        "notion",
        "Search Notion page",
        "Search the pages of the user's Notion workspace.",
        {"query": "string"},
        result=_notion_search,
        tags=("readOnlyHint",),
    ),
    CannedTool(
        "LINEAR_LIST_LINEAR_ISSUES",
        "linear",
        "List Linear issues",
        "List the issues of the user's Linear workspace.",
        {"first": "integer"},
        result=_linear_issues,
        tags=("readOnlyHint",),
    ),
    CannedTool(
        "GOOGLECALENDAR_EVENTS_LIST",
        "googlecalendar",
        "List events",
        "List the events of a Google Calendar.",
        {"calendarId": "string"},
        result=_calendar_events,
        tags=("readOnlyHint",),
    ),
    CannedTool(
        "JIRA_SEARCH_ISSUES",
        "jira",
        "Search issues",
        "Search Jira issues with JQL.",
        {"jql": "string"},
        ("jql",),
        _jira_search,
        ("readOnlyHint",),
    ),
    CannedTool(
        "HUBSPOT_LIST_CONTACTS",
        "hubspot",
        "List contacts",
        "List the contacts of the HubSpot account.",
        {"limit": "integer"},
        result=_hubspot_contacts,
        tags=("readOnlyHint",),
    ),
]
_BY_TOOLKIT: dict[str, list[CannedTool]] = {}
for _tool in _NAMED:
    _BY_TOOLKIT.setdefault(_tool.toolkit, []).append(_tool)
_BY_SLUG = {t.slug: t for t in _NAMED}


def _stand_in(slug: str) -> CannedTool:
    return CannedTool(
        f"{slug.upper()}_EMULATED_PING",
        slug,
        "Emulated ping",
        f"Emulator stand-in tool of {slug}: answers with its arguments.",
        {"message": "string"},
        tags=("readOnlyHint",),
    )


def tools_of(toolkit_slug: str) -> list[CannedTool]:
    """The canned tools of a toolkit (its named ones, else the stand-in)."""
    return list(_BY_TOOLKIT.get(toolkit_slug) or [_stand_in(toolkit_slug)])


def find(tool_slug: str, toolkit_slugs: list[str]) -> CannedTool | None:
    """The canned tool `tool_slug` among the tools of `toolkit_slugs`' toolkits, or None."""
    slug = tool_slug.upper()
    if slug in _BY_SLUG:
        return _BY_SLUG[slug]
    for toolkit in toolkit_slugs:
        if slug == f"{toolkit.upper()}_EMULATED_PING":
            return _stand_in(toolkit)
    return None


def input_schema(tool: CannedTool) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {k: {"type": v, "title": k} for k, v in tool.parameters.items()},
        "required": list(tool.required),
    }


def tool_body(tool: CannedTool, tk: dict[str, Any]) -> dict[str, Any]:
    """A canned tool as composio_client's `Tool` model."""
    return _tool(
        tool.slug,
        tool.name,
        tool.description,
        {"slug": tk["slug"], "name": tk["name"], "logo": cat.logo_url(tk["slug"])},
        input_schema(tool),
        no_auth=bool(tk.get("no_auth")),
        tags=list(tool.tags),
    )


def meta_tool_body(slug: str) -> dict[str, Any]:
    """A meta tool (`COMPOSIO_*`) as composio_client's `Tool` model."""
    schema = {"type": "object", "properties": META_PARAMETERS.get(slug, {}), "required": []}
    toolkit = {"slug": "composio", "name": "Composio", "logo": cat.logo_url("composio")}
    name = slug.removeprefix("COMPOSIO_").replace("_", " ").title()
    return _tool(slug, name, META_DESCRIPTIONS[slug], toolkit, schema, no_auth=True, tags=[])


def _tool(
    slug: str,
    name: str,
    description: str,
    toolkit: dict[str, str],
    schema: dict[str, Any],
    *,
    no_auth: bool,
    tags: list[str],
) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": name,
        "description": description,
        "human_description": description,
        "toolkit": toolkit,
        "input_parameters": schema,
        "output_parameters": {"type": "object", "properties": {"data": {"type": "object"}}},
        "no_auth": no_auth,
        "available_versions": [TOOL_VERSION],
        "version": TOOL_VERSION,
        "scopes": [],
        "tags": tags,
        "is_deprecated": False,
        "deprecated": {
            "displayName": name,
            "version": TOOL_VERSION,
            "available_versions": [TOOL_VERSION],
            "is_deprecated": False,
            "toolkit": {"logo": toolkit["logo"]},
        },
    }
