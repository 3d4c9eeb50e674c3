"""Ids that match: the short id every page shows finds its user in the support lookup, as the
admin search does; a past session's short id says which session replaced it. Only staff who may
see session ids may ask (the lookup is no oracle for the others)."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from sessions_app.models import AuditEvent, EndUser, ToolRouterSession
from sessions_app.tool_router import selectors
from sessions_app.tool_router.mcp_url import SHORT_ID_LENGTH, masked_id_text, short_id
from tests.factories import (
    ENDUSER_CHANGELIST,
    HX,
    client_for,
    make_end_user,
    store_deleted_session,
    store_session,
)

pytestmark = pytest.mark.django_db

OLD = "trs_cpnfo4nj2x7kq9"
NOW = "trs_w8h2mzq5ttr3ab"
GONE = "trs_d3l3t3dz0x1y2z"
WHEN = datetime(2025, 3, 4, 10, 30, tzinfo=UTC)


@pytest.fixture
def refreshed(session_admin: User) -> EndUser:
    """An end user whose session was refreshed by the session admin: OLD replaced by NOW."""
    user = make_end_user("usr_refreshed", "Ref Reshed")
    old = store_session(user, OLD, status="superseded", superseded_at=WHEN)
    store_session(user, NOW, replaces=old, created_by=session_admin)
    return user


def lookup(client, query: str):
    return client.get(reverse("sessions_app:support_lookup"), {"q": query}, headers=HX)


def test_the_short_id_is_one_format_the_first_12_characters() -> None:
    assert SHORT_ID_LENGTH == 12
    assert short_id(OLD) == "trs_cpnfo4nj"
    assert short_id("trs_x") == "trs_x"


def test_a_pasted_short_id_finds_the_user_as_the_admin_search_does(
    refreshed: EndUser, support_user: User, session_admin: User
) -> None:
    # The problem: a short id pasted into the lookup found nothing, the admin search found it.
    admin = client_for(session_admin).get(reverse(ENDUSER_CHANGELIST), {"q": short_id(NOW)})
    assert "usr_refreshed" in admin.content.decode()

    html = lookup(client_for(support_user), short_id(NOW)).content.decode()
    assert "usr_refreshed" in html and "No end user matches" not in html
    # ... and the row shows the session in that same short form.
    assert f">{short_id(NOW)}<" in html


@pytest.mark.parametrize("query", [NOW, short_id(NOW), NOW[:15], OLD, short_id(OLD)])
def test_a_whole_or_short_session_id_current_or_past_finds_its_user(
    refreshed: EndUser, query: str
) -> None:
    result = selectors.end_user_lookup(query=query)
    assert [u.external_id for u in result.users] == ["usr_refreshed"]


def test_less_than_a_short_id_is_not_a_session_match(refreshed: EndUser) -> None:
    assert selectors.end_user_lookup(query=short_id(NOW)[:-1]).users == []
    assert selectors.end_user_lookup(query="trs_").users == []


def test_a_past_short_id_says_which_session_replaced_it_when_and_by_whom(
    refreshed: EndUser, support_user: User, session_admin: User
) -> None:
    [user] = selectors.end_user_lookup(query=short_id(OLD)).users
    matched = user.matched_session
    assert matched.past and matched.replaced_by == NOW
    assert (matched.ended_at, matched.ended_by) == (WHEN, session_admin.username)

    html = " ".join(lookup(client_for(support_user), short_id(OLD)).content.decode().split())
    assert (
        f'{short_id(OLD)}</span> was replaced by <span class="mono">{short_id(NOW)}</span> '
        f"on 2025-03-04 10:30 UTC (refresh by {session_admin.username})."
    ) in html


def test_a_deleted_session_says_when_and_by_whom(support_user: User, session_admin: User) -> None:
    user = make_end_user("usr_gone")
    store_deleted_session(user, GONE, session_admin)
    html = " ".join(lookup(client_for(support_user), short_id(GONE)).content.decode().split())
    assert "usr_gone" in html
    assert f"{short_id(GONE)}</span> was deleted on " in html
    assert f"by {session_admin.username}." in html


def test_the_current_session_s_short_id_has_no_past_note(
    refreshed: EndUser, support_user: User
) -> None:
    html = lookup(client_for(support_user), short_id(NOW)).content.decode()
    assert "was replaced by" not in html


def test_a_short_id_shared_by_two_sessions_finds_both_users(db: None) -> None:
    a, b = make_end_user("usr_a"), make_end_user("usr_b")
    store_session(a, "trs_samestart_a")
    store_session(b, "trs_samestart_b")
    found = selectors.end_user_lookup(query=short_id("trs_samestart_a")).users
    assert sorted(u.external_id for u in found) == ["usr_a", "usr_b"]


@pytest.mark.parametrize("who", ["auditor", "outsider"])
def test_the_lookup_is_no_oracle_for_staff_who_may_not_see_ids(
    refreshed: EndUser, request: pytest.FixtureRequest, who: str
) -> None:
    """Whoever may not use the lookup is refused (audited) whatever they ask, found or not."""
    client = client_for(request.getfixturevalue(who))
    answers = [lookup(client, q) for q in (short_id(NOW), "trs_nosuchsession")]
    assert [a.status_code for a in answers] == [HTTPStatus.FORBIDDEN] * 2
    assert answers[0].content == answers[1].content
    assert "usr_refreshed" not in answers[0].content.decode()
    assert AuditEvent.objects.filter(action="access.refused").exists()


def test_the_admin_search_for_an_auditor_takes_no_short_id(
    refreshed: EndUser, auditor: User
) -> None:
    """The admin's existing rule stands: for staff who see ids masked, only the whole id."""
    client = client_for(auditor)
    url = reverse("admin:sessions_app_toolroutersession_changelist")
    short = client.get(url, {"q": short_id(NOW)}).content.decode()
    whole = client.get(url, {"q": NOW}).content.decode()
    assert masked_id_text(NOW) not in short
    assert masked_id_text(NOW) in whole


def test_anonymous_lookup_goes_to_login(refreshed: EndUser) -> None:
    response = lookup(client_for(None), short_id(NOW))
    assert response.status_code == HTTPStatus.FOUND and "login" in response["Location"]


def test_every_status_is_covered() -> None:
    # A new status would need its own sentence in the lookup's past-session note.
    assert set(ToolRouterSession.Status.values) == {"active", "superseded", "deleted"}
