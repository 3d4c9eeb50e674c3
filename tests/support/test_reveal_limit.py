"""The reveal limit is atomic: exactly SUPPORT_REVEALS_PER_HOUR reveals per staff user and hour
pass, however many arrive at once, and every success and every refusal is in the audit chain.

The race runs on PostgreSQL (real threads behind a barrier); SQLite admits one writer at a time,
so there it is checked one reveal after another.
"""

from __future__ import annotations

from collections import Counter
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User

from sessions_app.models import AuditEvent, RevealLock, ToolRouterSession
from sessions_app.tool_router.reveal import Reveal, Withheld, mcp_url_reveal
from tests.factories import HX, client_for, make_end_user, store_session

# The concurrency suite's marks (PostgreSQL only, transactional) and its barrier runner.
from tests.helpers import ON_POSTGRESQL, assert_chain_intact, reveal_url, run_together

LIMIT = 5
THREADS = 24
MCP_URL = "https://mcp.example.test/tool_router/trs_limit000001/mcp?k=PRIVATEPART"


@pytest.fixture
def limit(settings) -> int:
    settings.SUPPORT_REVEALS_PER_HOUR = LIMIT
    return LIMIT


@pytest.fixture
def session(db: None) -> ToolRouterSession:
    end_user = make_end_user("usr_limit", "Lima Limit")
    return store_session(end_user, "trs_limit000001", mcp_url=MCP_URL)


def _reveal_outcomes(actor: User) -> Counter[str]:
    """The `mcp_url.reveal` events this staff user has in the audit trail, by outcome."""
    return Counter(
        AuditEvent.objects.filter(action="mcp_url.reveal", actor=actor).values_list(
            "outcome", flat=True
        )
    )


# --- PostgreSQL: 24 reveals at once ------------------------------------------------------------


class TestAtOnceOnPostgreSQL:
    pytestmark = ON_POSTGRESQL

    def test_24_reveals_at_once_by_one_user_pass_exactly_the_limit(
        self, session: ToolRouterSession, support_user: User, limit: int
    ) -> None:
        def reveal() -> Reveal:
            return mcp_url_reveal(session=session, actor=support_user)

        results = run_together(*[reveal] * THREADS)

        assert not [r for r in results if not isinstance(r, Reveal)], results
        passed = [r for r in results if isinstance(r, Reveal) and r.ok]
        refused = [r for r in results if isinstance(r, Reveal) and r.withheld == Withheld.LIMIT]
        assert len(passed) == limit and len(refused) == THREADS - limit
        assert {r.url for r in passed} == {MCP_URL}
        assert all(r.url == "" for r in refused)
        assert _reveal_outcomes(support_user) == {"success": limit, "refused": THREADS - limit}
        # The first reveals raced to make the user's lock row: one row, no error.
        assert RevealLock.objects.filter(user=support_user).count() == 1
        assert_chain_intact()

    def test_24_reveal_requests_at_once_by_one_user_pass_exactly_the_limit(
        self, session: ToolRouterSession, support_user: User, limit: int
    ) -> None:
        url = reveal_url(session)
        clients = [client_for(support_user) for _ in range(THREADS)]

        responses = run_together(*[lambda c=c: c.post(url, headers=HX) for c in clients])

        statuses = Counter(getattr(r, "status_code", repr(r)) for r in responses)
        assert statuses == {
            HTTPStatus.OK: limit,
            HTTPStatus.TOO_MANY_REQUESTS: THREADS - limit,
        }, statuses
        for response in responses:
            html = response.content.decode()  # type: ignore[union-attr]
            shown = MCP_URL.replace("&", "&amp;") in html
            assert shown == (response.status_code == HTTPStatus.OK)  # type: ignore[union-attr]
        assert _reveal_outcomes(support_user) == {"success": limit, "refused": THREADS - limit}
        assert_chain_intact()


# --- Any database: one reveal after another ----------------------------------------------------


def test_the_limit_holds_one_reveal_after_another(
    session: ToolRouterSession, support_user: User, limit: int
) -> None:
    results = [mcp_url_reveal(session=session, actor=support_user) for _ in range(limit + 3)]

    assert [r.ok for r in results] == [True] * limit + [False] * 3
    assert all(r.withheld == Withheld.LIMIT and r.url == "" for r in results[limit:])
    assert f"{limit} MCP URLs in the last hour" in results[-1].message
    assert _reveal_outcomes(support_user) == {"success": limit, "refused": 3}
    assert RevealLock.objects.filter(user=support_user).count() == 1
    assert_chain_intact()


def test_a_refused_reveal_answers_429_and_is_audited(
    session: ToolRouterSession, support_user: User, settings
) -> None:
    settings.SUPPORT_REVEALS_PER_HOUR = 1
    client = client_for(support_user)
    assert client.post(reveal_url(session), headers=HX).status_code == HTTPStatus.OK

    response = client.post(reveal_url(session), headers=HX)

    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert b"PRIVATEPART" not in response.content
    refused = AuditEvent.objects.filter(action="mcp_url.reveal", outcome="refused").get()
    assert refused.actor == support_user
    assert refused.session_ref == "trs_limit000001"
    assert refused.reason == "Reveal limit of 1 per hour reached."
    assert _reveal_outcomes(support_user) == {"success": 1, "refused": 1}
    assert_chain_intact()


def test_refusals_do_not_count_towards_the_limit(
    session: ToolRouterSession, support_user: User, settings
) -> None:
    settings.SUPPORT_REVEALS_PER_HOUR = 2
    for _ in range(2):
        assert mcp_url_reveal(session=session, actor=support_user).ok
    for _ in range(3):
        assert not mcp_url_reveal(session=session, actor=support_user).ok

    settings.SUPPORT_REVEALS_PER_HOUR = 3
    assert mcp_url_reveal(session=session, actor=support_user).ok
    assert not mcp_url_reveal(session=session, actor=support_user).ok
