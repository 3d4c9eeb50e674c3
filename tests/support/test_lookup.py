"""The lookup: what matches, in which order, capped, and in a constant number of queries."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from sessions_app.models import EndUser
from sessions_app.tool_router import locators, selectors
from tests.factories import HX, client_for, make_end_user, store_deleted_session, store_session


def _found(query: str, **kwargs: int) -> list[str]:
    return [u.external_id for u in selectors.end_user_lookup(query=query, **kwargs).users]


@pytest.fixture
def people(db: None) -> dict[str, EndUser]:
    users = {
        "ada": make_end_user("usr_ada01", "Ada Lovelace", "Ada.Lovelace@Example.com"),
        "alan": make_end_user("usr_alan02", "Alan Turing", "alan@example.org"),
        "grace": make_end_user("cust-grace", "Grace Brewster Hopper", "grace@navy.example"),
        "upper": make_end_user("USR_SHOUT", "Loud Person", "loud@example.com"),
    }
    store_session(users["ada"], "trs_ada_old", status="superseded")
    store_session(users["ada"], "trs_ada_now")
    store_session(users["alan"], "trs_alan_now")
    return users


def test_an_external_id_prefix_matches_case_sensitively(people: dict[str, EndUser]) -> None:
    assert _found("usr_a") == ["usr_ada01", "usr_alan02"]
    assert _found("usr_ada") == ["usr_ada01"]
    assert _found("USR_") == ["USR_SHOUT"]
    assert _found("sr_a") == []  # a prefix, not a substring


def test_an_email_prefix_matches_in_any_letter_case(people: dict[str, EndUser]) -> None:
    assert _found("ada.love") == ["usr_ada01"]
    assert _found("ADA.LOVELACE@example") == ["usr_ada01"]
    assert _found("grace@") == ["cust-grace"]
    assert _found("example.com") == []


def test_display_name_words_match_the_start_of_any_word(people: dict[str, EndUser]) -> None:
    assert _found("lovelace") == ["usr_ada01"]
    assert _found("grace hop") == ["cust-grace"]
    assert _found("Brewster") == ["cust-grace"]
    assert _found("hopper ada") == []  # every word must match
    assert _found("velace") == []  # the start of a word, not the middle


def test_an_exact_session_id_finds_its_user_even_an_old_one(people: dict[str, EndUser]) -> None:
    assert _found("trs_alan_now") == ["usr_alan02"]
    result = selectors.end_user_lookup(query="trs_ada_old")
    assert [u.external_id for u in result.users] == ["usr_ada01"]
    assert result.users[0].matched_session_status == "superseded"
    assert result.users[0].active_session.session_id == "trs_ada_now"
    assert _found("trs_ada") == []  # session ids match exactly only


def test_an_empty_or_blank_query_lists_nobody(people: dict[str, EndUser]) -> None:
    assert _found("") == [] and _found("   ") == []


def test_results_are_capped_with_a_note_that_there_are_more(db: None) -> None:
    for i in range(7):
        make_end_user(f"cap_{i}")
    result = selectors.end_user_lookup(query="cap_", limit=5)
    assert [u.external_id for u in result.users] == [f"cap_{i}" for i in range(5)]
    assert result.has_more
    assert not selectors.end_user_lookup(query="cap_", limit=7).has_more


def test_an_exact_match_comes_first(db: None) -> None:
    for external_id in ["abc", "abc0", "aaa"]:
        make_end_user(external_id)
    other = make_end_user("zzz")
    store_session(other, "abc-session")
    assert _found("abc") == ["abc", "abc0"]
    assert _found("abc-session") == ["zzz"]


def test_a_too_long_query_gets_a_clear_message(db: None) -> None:
    result = selectors.end_user_lookup(query="x" * 500)
    assert result.users == [] and "longer than 200" in result.error


def test_like_wildcards_in_a_query_are_taken_literally(db: None) -> None:
    make_end_user("a_b")
    make_end_user("axb")
    make_end_user("a%c")
    assert _found("a_") == ["a_b"]
    assert _found("a%") == ["a%c"]


@pytest.mark.django_db
def test_the_lookup_page_lists_results_with_their_active_session(
    people: dict[str, EndUser], support_user: User
) -> None:
    client = client_for(support_user)
    response = client.get(reverse("sessions_app:support_lookup"), {"q": "usr_"}, headers=HX)
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "usr_ada01" in html and "Ada Lovelace" in html and "Ada.Lovelace@Example.com" in html
    assert "trs_ada_now"[:12] in html
    assert "no session" not in html.split("usr_alan02")[0]  # ada has one
    assert "https://mcp.example.test" not in html


@pytest.mark.django_db
def test_the_lookup_says_refine_when_there_are_more(support_user: User, settings) -> None:
    settings.SUPPORT_SEARCH_LIMIT = 3
    for i in range(5):
        make_end_user(f"many_{i}")
    client = client_for(support_user)
    response = client.get(reverse("sessions_app:support_lookup"), {"q": "many"}, headers=HX)
    assert response.content.decode().count("result-link") == 3
    assert b"Refine your search" in response.content


@pytest.mark.django_db
def test_a_query_that_matches_nothing_says_so(support_user: User) -> None:
    client = client_for(support_user)
    response = client.get(reverse("sessions_app:support_lookup"), {"q": "nobody"}, headers=HX)
    assert "No end user matches “nobody”" in response.content.decode()


# --- Query counts ------------------------------------------------------------------------------


def _grow(prefix: str, n: int) -> None:
    for i in range(n):
        user = make_end_user(f"{prefix}{i:03d}", f"Grow Person{i}", f"{prefix}{i}@example.com")
        for g in range(2):
            store_session(user, f"trs_{prefix}{i}_{g}", status="superseded")
        store_session(user, f"trs_{prefix}{i}_now")


@pytest.mark.django_db
def test_the_lookup_query_count_does_not_grow_with_the_results(
    support_user: User, django_assert_max_num_queries
) -> None:
    client = client_for(support_user)
    url = reverse("sessions_app:support_lookup")
    client.get(url, {"q": "warm"}, headers=HX)
    _grow("few", 2)
    _grow("lots", 30)
    for query in ("few", "lots", "grow person", "trs_lots7_now", "trs_lots1"):
        # The staff session (a cache read), the staff user's row, their permissions (a cache
        # read), the sessions the query names, the users (every kind of match and their active
        # session in one).
        with django_assert_max_num_queries(5):
            response = client.get(url, {"q": query}, headers=HX)
        assert response.status_code == HTTPStatus.OK


@pytest.mark.django_db
def test_an_email_or_name_lookup_asks_no_session_query(
    support_user: User, django_assert_num_queries
) -> None:
    client = client_for(support_user)
    url = reverse("sessions_app:support_lookup")
    client.get(url, {"q": "warm"}, headers=HX)
    _grow("mail", 2)
    for query, found in (("mail1@", "mail001"), ("grow person1", "mail001")):
        # The staff session, the staff user, their permissions, the users: no session is
        # named by a query with "@" or a space.
        with django_assert_num_queries(4) as captured:
            response = client.get(url, {"q": query}, headers=HX)
        assert found in response.content.decode()
        sent = [q["sql"] for q in captured.captured_queries]
        assert not [sql for sql in sent if 'FROM "sessions_app_toolroutersession"' in sql]
    with django_assert_num_queries(5):
        client.get(url, {"q": "trs_mail1_now"}, headers=HX)


@pytest.mark.django_db
def test_the_card_query_count_does_not_grow_with_the_history(
    support_user: User, session_admin: User, django_assert_max_num_queries
) -> None:
    client = client_for(support_user)

    client.get(reverse("sessions_app:support_lookup"), {"q": "warm"}, headers=HX)

    def card(end_user: EndUser) -> None:
        # The staff session (a cache read), the staff user's row, their permissions (a cache
        # read), the end user joined to their sessions (active and history, who deleted each,
        # the active one's toolkit names; one row without a session), the timeline's first page.
        url = reverse("sessions_app:support_user_card", args=[end_user.public_id])
        with django_assert_max_num_queries(5):
            response = client.get(url, headers=HX)
        assert response.status_code == HTTPStatus.OK

    card(make_end_user("no_history"))
    short = make_end_user("short_history")
    store_session(short, "trs_short_now")
    card(short)

    long = make_end_user("long_history")
    previous = None
    for g in range(40):
        if g % 3 == 0:
            session = store_deleted_session(long, f"trs_long_{g}", session_admin)
        else:
            session = store_session(long, f"trs_long_{g}", status="superseded")
        previous = session
    now = store_session(long, "trs_long_now")
    now.replaces = previous
    now.created_by = session_admin
    now.save(update_fields=["replaces", "created_by"])
    card(long)


def test_the_search_box_does_not_cut_a_long_query_the_server_refuses_it(
    support_user: User,
) -> None:
    client = client_for(support_user)
    url = reverse("sessions_app:support_lookup")
    assert b"maxlength" not in client.get(url).content
    response = client.get(url, {"q": "x" * 300})
    assert "longer than 200 characters" in response.content.decode()


@pytest.mark.django_db
def test_the_lookup_asks_once_whether_the_viewer_sees_ids_however_many_rows(
    support_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        store_session(make_end_user(f"rows_{i}"), f"trs_rows{i}_now_0123456789")
    asked: list[object] = []
    real = locators.may_see_ids
    monkeypatch.setattr(locators, "may_see_ids", lambda user: asked.append(user) or real(user))
    client = client_for(support_user)
    response = client.get(reverse("sessions_app:support_lookup"), {"q": "rows_"}, headers=HX)
    html = response.content.decode()
    # Every row shows its session id in full (Support may see ids), asked for one viewer once.
    assert [i for i in range(6) if f"trs_rows{i}_now_0123456789" in html] == list(range(6))
    assert len(asked) == 1
    assert asked[0].pk == support_user.pk
