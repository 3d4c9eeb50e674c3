"""The support card's recent tool executions: Composio's execution log through the seam, for
Support and Session admin, filtered and paged; one execution in full, redacted and audited; the
chart of the last 24 hours; Composio's failures as a sentence."""

from __future__ import annotations

import re
import unittest.mock as mock
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sessions_app.composio import seam as composio_seam
from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, ToolRouterSession
from sessions_app.tool_router import executions as tool_runs
from sessions_app.tool_router import rate_limit
from sessions_app.tool_router.errors import BudgetSpent
from sessions_app.tool_router.redaction import REDACTED, redact
from tests.factories import (
    ALLOWED,
    SHIPPED_CATALOG,
    client_for,
    give_session,
    make_end_user,
    sync_catalog,
)

pytestmark = pytest.mark.django_db

SENTINEL = "ak_SENTINEL_exec_7c1e93a5b2"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3IifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
SLACK_TOKEN = "xoxb-123456789012-abcdefABCDEF"
MCP_URL = "https://backend.composio.dev/tool_router/trs_leak123/mcp"
LEAKY_ARGUMENTS = {
    "owner": "acme",
    "repo": "widgets",
    "title": f"token {GITHUB_TOKEN} in the title",
    "body": f"key={SENTINEL} and {SLACK_TOKEN}; see {MCP_URL}",
    "headers": {"Authorization": BEARER},
    "access_token": "plain-looking-value",
    "notes": [f"Authorization: {BEARER}", "nothing secret here"],
}
SECRETS = (
    SENTINEL,
    GITHUB_TOKEN,
    BEARER,
    "eyJhbGciOiJIUzI1NiJ9",
    SLACK_TOKEN,
    MCP_URL,
    "plain-looking-value",
    "trs_leak123",
)


def executions_url(end_user: EndUser, **query: str) -> str:
    url = reverse("sessions_app:support_user_executions", args=[end_user.public_id])
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


def detail_url(end_user: EndUser, log_id: str) -> str:
    return reverse("sessions_app:support_execution_detail", args=[end_user.public_id, log_id])


def run(session: ToolRouterSession, tool: str, arguments: dict[str, Any] | None = None) -> str:
    outcome = tool_runs.tool_router_session_execute(
        session=session, tool_slug=tool, arguments=arguments
    )
    assert outcome.ran, outcome.message
    return outcome.log_id


@pytest.fixture
def ran(alices_session: ToolRouterSession, catalog: Emulator) -> dict[str, str]:
    """Alice's github session, connected, with one success, one failure (missing arguments)
    and one leaky run (secrets in its arguments, echoed in the log)."""
    catalog.set_connection(alices_session.session_id, "github", "ACTIVE")
    return {
        "ok": run(alices_session, "GITHUB_GET_THE_AUTHENTICATED_USER"),
        "failed": run(alices_session, "GITHUB_CREATE_AN_ISSUE"),
        "leaky": run(alices_session, "GITHUB_CREATE_AN_ISSUE", LEAKY_ARGUMENTS),
    }


@pytest.fixture(params=["support", "session admin"])
def staff_client(request: pytest.FixtureRequest, support_user: User, session_admin: User) -> Client:
    return client_for(support_user if request.param == "support" else session_admin)


def rows_of(html: str) -> list[str]:
    return re.findall(r'<tr class="execution-row[^"]*">.*?<td class="mono">([A-Z_]+)', html, re.S)


def test_support_and_session_admin_see_the_users_executions_newest_first(
    ran: dict[str, str], alice: EndUser, staff_client: Client
) -> None:
    response = staff_client.get(executions_url(alice), HTTP_HX_REQUEST="true")

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert rows_of(html) == [
        "GITHUB_CREATE_AN_ISSUE",
        "GITHUB_CREATE_AN_ISSUE",
        "GITHUB_GET_THE_AUTHENTICATED_USER",
    ]
    assert "Missing required argument(s): owner, repo, title" in html
    assert "badge-failed" in html and " ms</td>" in html
    assert '<td class="mono">github</td>' in html
    assert "<svg" in html and 'class="chart-failed"' in html and 'class="chart-ok"' in html
    assert "3, 1 failed" in html
    assert "<html" not in html  # a fragment
    assert AuditEvent.objects.filter(action="tool_execution.view").count() == 0


def test_without_javascript_the_executions_are_the_whole_card(
    ran: dict[str, str], alice: EndUser, support_client: Client
) -> None:
    response = support_client.get(executions_url(alice, status="failed"))

    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert "<html" in html and 'id="user-card"' in html
    assert rows_of(html) == ["GITHUB_CREATE_AN_ISSUE"]


def test_filters_by_status_and_toolkit_and_pages_with_composios_cursor(
    ran: dict[str, str],
    alice: EndUser,
    alices_session: ToolRouterSession,
    support_client: Client,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sessions_app.tool_router import execution_logs

    ok_only = support_client.get(executions_url(alice, status="success"), HTTP_HX_REQUEST="true")
    assert rows_of(ok_only.content.decode()) == [
        "GITHUB_CREATE_AN_ISSUE",
        "GITHUB_GET_THE_AUTHENTICATED_USER",
    ]
    no_gmail = support_client.get(executions_url(alice, toolkit="gmail"), HTTP_HX_REQUEST="true")
    assert rows_of(no_gmail.content.decode()) == []
    assert "matching these filters" in no_gmail.content.decode()

    monkeypatch.setattr(execution_logs, "PAGE_SIZE", 2)
    first = support_client.get(executions_url(alice), HTTP_HX_REQUEST="true").content.decode()
    assert len(rows_of(first)) == 2
    cursor = re.search(r'href="[^"]*\?cursor=([^"&]+)"', first).group(1)
    rest = support_client.get(executions_url(alice, cursor=cursor), HTTP_HX_REQUEST="true")
    assert rows_of(rest.content.decode()) == ["GITHUB_GET_THE_AUTHENTICATED_USER"]
    assert "<svg" not in rest.content.decode()  # the chart is the first page's


def test_all_sessions_includes_a_superseded_session(
    ran: dict[str, str],
    alice: EndUser,
    alices_session: ToolRouterSession,
    session_admin: User,
    catalog: Emulator,
    support_client: Client,
) -> None:
    from sessions_app.tool_router import sessions

    result = sessions.tool_router_session_refresh(end_user=alice, actor=session_admin)
    assert result.ok, result.message
    new = alice.sessions.get(status=ToolRouterSession.Status.ACTIVE)
    catalog.set_connection(new.session_id, "github", "ACTIVE")
    run(new, "GITHUB_GET_THE_AUTHENTICATED_USER")

    this = support_client.get(executions_url(alice), HTTP_HX_REQUEST="true").content.decode()
    every = support_client.get(executions_url(alice, scope="all"), HTTP_HX_REQUEST="true")

    assert len(rows_of(this)) == 1
    assert len(rows_of(every.content.decode())) == 4


def test_the_detail_is_redacted_and_its_viewing_audited(
    ran: dict[str, str], alice: EndUser, staff_client: Client
) -> None:
    response = staff_client.post(detail_url(alice, ran["leaky"]), HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert "widgets" in html and "acme" in html and REDACTED in html
    for secret in SECRETS:
        assert secret not in html, secret
    event = AuditEvent.objects.get(action="tool_execution.view")
    assert event.end_user_external_id == alice.external_id
    assert event.details == {
        "log_id": ran["leaky"],
        "tool": "GITHUB_CREATE_AN_ISSUE",
        "toolkit": "github",
    }
    assert event.toolkit_slugs == " github "


def test_a_page_is_shared_for_a_while_and_opening_one_is_a_post(
    ran: dict[str, str], alice: EndUser, catalog: Emulator, support_client: Client
) -> None:
    first = support_client.get(executions_url(alice), HTTP_HX_REQUEST="true")
    asked = catalog.count("logs.tool_execution")
    again = support_client.get(executions_url(alice), HTTP_HX_REQUEST="true")

    assert rows_of(again.content.decode()) == rows_of(first.content.decode())
    assert catalog.count("logs.tool_execution") == asked
    assert support_client.get(detail_url(alice, ran["ok"])).status_code == 405
    assert not AuditEvent.objects.filter(action="tool_execution.view").exists()


def test_another_users_execution_is_not_found_and_not_audited(
    ran: dict[str, str], end_users: list[EndUser], support_client: Client
) -> None:
    response = support_client.post(detail_url(end_users[0], ran["ok"]), HTTP_HX_REQUEST="true")
    unknown = support_client.post(detail_url(end_users[0], "log_nosuchentry"))

    assert response.status_code == unknown.status_code == HTTPStatus.NOT_FOUND
    assert "no such execution" in response.content.decode()
    assert not AuditEvent.objects.filter(action="tool_execution.view").exists()


@pytest.mark.parametrize("who", ["auditor", "outsider"])
def test_other_roles_are_refused(
    ran: dict[str, str], alice: EndUser, who: str, auditor: User, outsider: User
) -> None:
    client = client_for(auditor if who == "auditor" else outsider)
    assert client.get(executions_url(alice)).status_code == HTTPStatus.FORBIDDEN
    assert client.post(detail_url(alice, ran["ok"])).status_code == HTTPStatus.FORBIDDEN
    assert AuditEvent.objects.filter(action="access.refused").exists()
    assert not AuditEvent.objects.filter(action="tool_execution.view").exists()


def test_anonymous_is_sent_to_log_in(ran: dict[str, str], alice: EndUser) -> None:
    for response in (Client().get(executions_url(alice)), Client().post(detail_url(alice, "x"))):
        assert response.status_code == HTTPStatus.FOUND
        assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    ("fault", "status", "said"),
    [
        ({"status": 503}, HTTPStatus.BAD_GATEWAY, "Composio failed with HTTP 503"),
        ({"status": 429, "retry_after": 7}, HTTPStatus.TOO_MANY_REQUESTS, "retry in 7 s"),
    ],
)
def test_composios_failures_are_a_sentence(
    ran: dict[str, str],
    alice: EndUser,
    catalog: Emulator,
    support_client: Client,
    fault: dict[str, Any],
    status: int,
    said: str,
    settings: Any,
) -> None:
    settings.COMPOSIO_SAFE_RETRIES = 0
    catalog.faults.enqueue(
        fault["status"], endpoint="logs.tool_execution", retry_after=fault.get("retry_after")
    )
    response = support_client.get(executions_url(alice), HTTP_HX_REQUEST="true")

    assert response.status_code == status
    assert "Could not read the tool executions" in response.content.decode()
    assert said in response.content.decode()
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        assert response["Retry-After"] == "7"

    catalog.faults.enqueue(503, endpoint="logs.tool_execution_get")
    detail = support_client.post(detail_url(alice, ran["ok"]), HTTP_HX_REQUEST="true")
    assert detail.status_code == HTTPStatus.BAD_GATEWAY
    assert not AuditEvent.objects.filter(action="tool_execution.view").exists()


def test_a_timeout_is_a_sentence(
    ran: dict[str, str], alice: EndUser, catalog: Emulator, support_client: Client, settings: Any
) -> None:
    settings.COMPOSIO_READ_TIMEOUT = 0.3
    settings.COMPOSIO_SAFE_RETRIES = 0
    composio_seam.reset_client()
    catalog.faults.latency(1.0, endpoint="logs.tool_execution")
    response = support_client.get(executions_url(alice), HTTP_HX_REQUEST="true")

    assert response.status_code == HTTPStatus.BAD_GATEWAY
    assert "did not answer in time" in response.content.decode()


def test_a_spent_budget_sends_nothing(
    ran: dict[str, str], alice: EndUser, catalog: Emulator, support_client: Client
) -> None:
    before = catalog.count("logs.tool_execution")

    def spent(*args: Any, **kwargs: Any) -> None:
        raise BudgetSpent(retry_after=5)

    with mock.patch.object(rate_limit, "draw", spent):
        response = support_client.get(executions_url(alice), HTTP_HX_REQUEST="true")
        detail = support_client.post(detail_url(alice, ran["ok"]), HTTP_HX_REQUEST="true")

    assert response.status_code == detail.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert response["Retry-After"] == "5"
    assert "budget is spent" in response.content.decode()
    assert catalog.count("logs.tool_execution") == before
    assert catalog.count("logs.tool_execution_get") == 0
    assert not AuditEvent.objects.filter(action="tool_execution.view").exists()


# --- Redaction with the sentinel API key -----------------------------------------------------


@pytest.fixture
def sentinel_composio(settings: Any) -> Iterator[Emulator]:
    """A Composio of our own that accepts only the sentinel key; the console configured for it."""
    emu = Emulator(api_key=SENTINEL, host="127.0.0.1", port=0)
    emu.set_catalog([t for t in SHIPPED_CATALOG if t["slug"] in ALLOWED])
    emu.start()
    settings.COMPOSIO_API_KEY = SENTINEL
    settings.COMPOSIO_BASE_URL = emu.base_url
    settings.COMPOSIO_READ_TIMEOUT = 5.0
    settings.COMPOSIO_CONNECT_TIMEOUT = 2.0
    composio_seam.reset_client()
    yield emu
    composio_seam.reset_client()
    emu.stop()


def test_no_secret_of_a_log_payload_reaches_any_response(
    sentinel_composio: Emulator, session_admin: User, support_user: User
) -> None:
    sync_catalog(ALLOWED)
    user = make_end_user("usr_leaky", "Leaky")
    session = give_session(user, ["github"], session_admin)
    sentinel_composio.set_connection(session.session_id, "github", "ACTIVE")
    leaky = run(session, "GITHUB_CREATE_AN_ISSUE", LEAKY_ARGUMENTS)
    failed = run(session, "GITHUB_CREATE_AN_ISSUE", {"title": f"{SENTINEL} {GITHUB_TOKEN}"})
    client = client_for(support_user)

    pages = [
        client.get(executions_url(user), HTTP_HX_REQUEST="true"),
        client.get(executions_url(user)),
        client.post(detail_url(user, leaky), HTTP_HX_REQUEST="true"),
        client.post(detail_url(user, leaky)),
        client.post(detail_url(user, failed)),
        client.get(reverse("sessions_app:support_user_card", args=[user.public_id])),
    ]

    for response in pages:
        assert response.status_code == HTTPStatus.OK
        body = response.content.decode() + str(dict(response.headers))
        for secret in SECRETS:
            assert secret not in body, (secret, response.request["PATH_INFO"])
    stored = str(list(AuditEvent.objects.values_list("reason", "details")))
    assert SENTINEL not in stored and GITHUB_TOKEN not in stored


def test_redact_by_key_and_by_shape() -> None:
    assert redact({"Authorization": "x", "auth_config_id": "ac_1", "n": 3, "ok": True}) == {
        "Authorization": REDACTED,
        "auth_config_id": "ac_1",
        "n": 3,
        "ok": True,
    }
    assert redact(["see https://h.example/tool_router/trs_1/mcp now"]) == [f"see {REDACTED} now"]
    assert redact({"url": "https://api.example/x?access_token=abc123"}) == {
        "url": f"https://api.example/x?{REDACTED}"
    }
    assert GITHUB_TOKEN not in redact(f"use {GITHUB_TOKEN}")
    assert redact("a plain sentence stays") == "a plain sentence stays"
