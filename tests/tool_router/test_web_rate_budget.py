"""Every Composio call made for a web request pays from the budget the bulk jobs draw from (one
`RateBudget` row): a short wait is slept, a longer one refused with "try again in N s" and no
call. A bulk item is paid once, by its runner, never again by the services it calls."""

from __future__ import annotations

import html
import re
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from django.urls import reverse

from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, RateBudget, SessionOperation, ToolRouterSession
from sessions_app.tool_router import rate_limit, sessions
from sessions_app.tool_router.errors import BudgetSpent
from tests.factories import (
    HX,
    admin_action_confirmed,
    client_for,
    give_session,
    make_end_users,
    start_bulk_job,
)
from tests.helpers import item_states, messages_of

SPENT = re.compile(r"Composio's request budget is spent; try again in (\d+) s")


def _web_request() -> object:
    return RequestFactory().post("/")


@pytest.fixture
def spent(db: None) -> None:
    """The shared budget is 200 requests in debt (10 s at the default 1,200/min), as bulk
    runners leave it when they reserve ahead of their sends."""
    rate_limit.reserve(rate_limit.burst() + 200)


def _retry_after(text: str) -> int:
    """The seconds a "budget is spent" sentence (in a page, a message or a row) says to wait."""
    match = SPENT.search(html.unescape(text))
    assert match, text
    seconds = int(match.group(1))
    assert 5 <= seconds <= 12, seconds
    return seconds


# --- draw --------------------------------------------------------------------------------------


def test_a_call_outside_a_web_request_draws_nothing(db: None) -> None:
    rate_limit.draw(None, 5)
    assert not RateBudget.objects.exists()


def test_a_web_call_draws_from_the_row_the_bulk_jobs_draw_from(db: None, settings) -> None:
    settings.BULK_RATE_PER_MINUTE = 1  # next to nothing comes back while the test runs
    settings.BULK_RATE_BURST = 100
    rate_limit.take(2)  # a bulk runner's item
    rate_limit.draw(_web_request(), 3)
    row = RateBudget.objects.get()
    assert row.name == rate_limit.COMPOSIO
    assert 94.99 < row.tokens < 95.01


def test_a_short_wait_is_slept_and_a_long_one_refused_taking_nothing(db: None, settings) -> None:
    settings.BULK_RATE_PER_MINUTE = 60  # one a second
    settings.BULK_RATE_BURST = 1
    settings.COMPOSIO_WEB_MAX_WAIT_SECONDS = 2
    slept: list[float] = []
    rate_limit.draw(_web_request(), sleep=slept.append)  # the one token there is
    rate_limit.draw(_web_request(), sleep=slept.append)  # one second in debt: waits for it
    assert len(slept) == 1 and 0.9 < slept[0] <= 1.0
    before = RateBudget.objects.values_list("tokens", "updated_at").get()

    with pytest.raises(BudgetSpent) as refused:
        rate_limit.draw(_web_request(), 2, sleep=slept.append)  # three seconds: past the bound

    assert refused.value.retry_after == 3
    assert SPENT.search(refused.value.message)
    assert "Nothing was sent to Composio." in refused.value.message
    assert RateBudget.objects.values_list("tokens", "updated_at").get() == before
    assert len(slept) == 1  # refused at once, without waiting


def test_one_web_request_waits_at_most_the_bound_in_all(db: None, settings) -> None:
    settings.BULK_RATE_PER_MINUTE = 60  # one a second
    settings.BULK_RATE_BURST = 1
    settings.COMPOSIO_WEB_MAX_WAIT_SECONDS = 2
    request, slept = _web_request(), []
    rate_limit.draw(request, sleep=slept.append)  # the one token there is
    rate_limit.draw(request, 1.5, sleep=slept.append)  # waits 1.5 s of the 2

    with pytest.raises(BudgetSpent):
        # A 1.6 s wait fits the bound, but not what is left of it after this request's 1.5 s.
        rate_limit.draw(request, 0.1, sleep=slept.append)

    assert len(slept) == 1 and 1.4 < slept[0] <= 1.5
    rate_limit.draw(_web_request(), 0.1, sleep=slept.append)  # another request: its own 2 s
    assert len(slept) == 2 and 1.5 < slept[1] <= 1.6


# --- Bulk and web share one budget; a bulk item pays once --------------------------------------


@pytest.mark.usefixtures("immediate")
def test_a_bulk_item_is_paid_by_its_runner_once_and_web_calls_draw_from_the_same_row(
    catalog: Emulator, session_admin: User, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BULK_RATE_PER_MINUTE = 1  # next to nothing comes back while the test runs
    settings.BULK_RATE_BURST = 1000
    settings.BULK_CONCURRENCY = 2
    for user in make_end_users(3):
        give_session(user, ["github"], session_admin)  # a service call outside a request: free
    assert not RateBudget.objects.exists()
    taken: list[float] = []
    reserve_many = rate_limit.reserve_many

    def runner_pays(count: int, cost: float = 1.0, **kwargs: object) -> list[float]:
        taken.append(count * cost)
        return reserve_many(count, cost, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rate_limit, "reserve_many", runner_pays)
    before = catalog.count()

    job = start_bulk_job("refresh", None, session_admin)

    assert item_states(job) == {"succeeded": 3}
    assert catalog.count() - before == 6  # each refresh: create the new session, delete the old
    # The runner paid two per item for the batch it claimed (nothing for the turn that found
    # nothing left to claim); the services it called drew nothing on top.
    assert sum(taken) == 6
    row = RateBudget.objects.get()
    assert sum(taken) - 0.1 < 1000 - row.tokens <= sum(taken)

    paid = 1000 - row.tokens
    session = ToolRouterSession.objects.filter(status="active").first()
    url = reverse("sessions_app:support_session_connections", args=[session.public_id])
    assert client_for(session_admin).get(url, headers=HX).status_code == HTTPStatus.OK
    row = RateBudget.objects.get()  # still the one row
    assert paid + 1.9 < 1000 - row.tokens <= paid + 2  # the check's two requests


def test_when_bulk_runners_have_spent_the_budget_a_web_call_is_refused(
    remote_session: ToolRouterSession, support_client: Client, emulator: Emulator
) -> None:
    rate_limit.reserve(rate_limit.burst() + 200)  # what runners reserving ahead leave behind
    before = emulator.count()
    url = reverse("sessions_app:support_session_connections", args=[remote_session.public_id])

    html = support_client.get(url, headers=HX).content.decode()

    _retry_after(html)
    assert emulator.count() == before


# --- The support console -----------------------------------------------------------------------


@pytest.mark.usefixtures("spent")
def test_a_spent_budget_refuses_a_connection_check_without_keeping_it(
    remote_session: ToolRouterSession, support_client: Client, emulator: Emulator
) -> None:
    url = reverse("sessions_app:support_session_connections", args=[remote_session.public_id])
    before = emulator.count()

    response = support_client.get(url, headers=HX)

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Could not check the connections" in html
    _retry_after(html)
    assert emulator.count() == before
    # Not kept: once the budget has room, the next view asks.
    RateBudget.objects.all().delete()
    assert b"not connected" in support_client.get(url, headers=HX).content
    assert emulator.count() - before == 2


def test_a_spent_budget_refuses_check_now_with_429_and_keeps_the_users_turn(
    remote_session: ToolRouterSession, support_client: Client, emulator: Emulator
) -> None:
    url = reverse("sessions_app:support_session_connections_check", args=[remote_session.public_id])
    support_client.get(
        reverse("sessions_app:support_session_connections", args=[remote_session.public_id])
    )
    rate_limit.reserve(rate_limit.burst() + 200)
    before = emulator.count()

    response = support_client.post(url, headers=HX)

    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    html = response.content.decode()
    assert int(response["Retry-After"]) == _retry_after(html)
    assert "not connected" in html  # the cached state, with the reason it was not asked again
    assert emulator.count() == before
    RateBudget.objects.all().delete()
    assert support_client.post(url, headers=HX).status_code == HTTPStatus.OK
    assert emulator.count() - before == 2


@pytest.fixture
def with_session(catalog: Emulator, session_admin: User, end_users: list[EndUser]) -> EndUser:
    """usr_1 with an active github session (made outside a request: the budget is untouched)."""
    give_session(end_users[0], ["github"], session_admin)
    return end_users[0]


@pytest.mark.usefixtures("spent")
def test_a_spent_budget_refuses_a_refresh_from_the_card_and_keeps_the_session(
    with_session: EndUser, session_admin: User, catalog: Emulator
) -> None:
    old = with_session.sessions.get(status="active")
    before = catalog.count()
    url = reverse("sessions_app:support_session_refresh", args=[with_session.public_id])

    html = client_for(session_admin).post(url, headers=HX).content.decode()

    assert "message-error" in html
    _retry_after(html)
    assert catalog.count() == before
    assert with_session.sessions.get(status="active") == old
    intent = SessionOperation.objects.filter(end_user=with_session).latest("id")
    assert intent.kind == "refresh" and intent.state == SessionOperation.State.FAILED
    event = AuditEvent.objects.filter(action="session.refresh").latest("sequence")
    assert event.outcome == AuditEvent.Outcome.FAILURE
    assert event.details["error"] == "BudgetSpent"
    assert event.details["retry_after"] == _retry_after(event.reason)


# --- Admin actions -----------------------------------------------------------------------------

ACTIONS = [
    ("create_sessions", 1, ["gmail"], "session.create"),
    ("refresh_sessions", 0, ["github"], "session.create"),
    ("change_session_toolkits", 0, ["gmail"], "session.update"),
    ("delete_sessions", 0, None, "session.delete"),
]


@pytest.mark.usefixtures("spent")
@pytest.mark.parametrize(("action", "who", "toolkits", "endpoint"), ACTIONS)
def test_a_spent_budget_refuses_every_session_action_of_the_admin(
    action: str,
    who: int,
    toolkits: list[str] | None,
    endpoint: str,
    with_session: EndUser,
    end_users: list[EndUser],
    session_admin_client: Client,
    catalog: Emulator,
) -> None:
    before = catalog.count()
    sent_before = catalog.count(endpoint)
    sessions_before = list(ToolRouterSession.objects.values_list("pk", "status", "toolkits"))

    response = admin_action_confirmed(
        session_admin_client, action, end_users[who : who + 1], toolkits
    )

    messages = " ".join(messages_of(response))
    _retry_after(messages)
    assert end_users[who].external_id in messages
    assert catalog.count(endpoint) == sent_before and catalog.count() == before
    assert list(ToolRouterSession.objects.values_list("pk", "status", "toolkits")) == (
        sessions_before
    )
    intent = SessionOperation.objects.latest("id")
    assert intent.state == SessionOperation.State.FAILED
    assert "request budget is spent" in intent.error


@pytest.mark.usefixtures("spent")
def test_a_spent_budget_refuses_the_catalog_sync_from_the_admin(
    session_admin_client: Client, emulator: Emulator
) -> None:
    before = emulator.count()

    response = session_admin_client.post(reverse("admin:sessions_app_toolkit_sync"), follow=True)

    messages = " ".join(messages_of(response))
    assert "The catalog was not synced" in messages
    _retry_after(messages)
    assert emulator.count() == before
    event = AuditEvent.objects.filter(action="catalog.sync").latest("sequence")
    assert event.outcome == AuditEvent.Outcome.FAILURE and SPENT.search(event.reason)


def test_a_spent_budget_refuses_the_retry_of_remote_deletes_from_the_admin(
    with_session: EndUser, session_admin: User, session_admin_client: Client, catalog: Emulator
) -> None:
    refreshed = sessions.tool_router_session_refresh(end_user=with_session, actor=session_admin)
    assert refreshed.ok, refreshed.message
    old = ToolRouterSession.objects.get(status="superseded")
    ToolRouterSession.objects.filter(pk=old.pk).update(
        remote_deleted_at=None, remote_delete_error="Composio failed with HTTP 500"
    )
    rate_limit.reserve(rate_limit.burst() + 200)
    before = catalog.count()

    response = session_admin_client.post(
        reverse("admin:sessions_app_toolroutersession_changelist"),
        {"action": "retry_remote_deletes", "_selected_action": [old.pk], "index": "0"},
        follow=True,
    )

    assert "Deleted 0 superseded sessions at Composio; 1 still failing." in messages_of(response)
    assert catalog.count() == before
    old.refresh_from_db()
    assert old.remote_deleted_at is None
    _retry_after(old.remote_delete_error)


def test_a_refresh_whose_old_session_delete_finds_no_budget_leaves_it_for_the_retry(
    with_session: EndUser, session_admin: User, catalog: Emulator, settings
) -> None:
    settings.BULK_RATE_PER_MINUTE = 1
    settings.BULK_RATE_BURST = 1  # room for the create, none for the delete after it
    old = with_session.sessions.get(status="active")
    before = catalog.count()
    url = reverse("sessions_app:support_session_refresh", args=[with_session.public_id])

    response = client_for(session_admin).post(url, headers=HX)

    assert response.status_code == HTTPStatus.OK
    assert [r.endpoint for r in catalog.requests[before:]] == ["session.create"]
    new = with_session.sessions.get(status="active")
    assert new != old
    old.refresh_from_db()
    assert old.status == "superseded" and old.remote_deleted_at is None
    assert "request budget is spent" in old.remote_delete_error
    assert "it will be retried" in response.content.decode()
