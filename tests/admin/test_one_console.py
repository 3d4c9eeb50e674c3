"""One console: the admin's header carries the console's navigation, a support card and the
admin pages of its user link to each other (each link only for whoever may open it), admin
refusals are the console's refusal page naming the role, and admin action results list the
sessions they made as short ids linked to the card."""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sessions_app import refusals
from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, ToolRouterSession
from sessions_app.tool_router.mcp_url import masked_id_text, short_id
from tests.factories import admin_action_confirmed, client_for, give_session
from tests.helpers import fresh_refusal_windows, messages_of, refusals_counted

pytestmark = pytest.mark.django_db

ROLE_USERS = ("support_user", "session_admin", "auditor", "outsider")


def card_of(end_user: EndUser) -> str:
    return reverse("sessions_app:support_user_card", args=[end_user.public_id])


def enduser_page(end_user: EndUser) -> str:
    return reverse("admin:sessions_app_enduser_change", args=[end_user.pk])


def session_page(session: ToolRouterSession) -> str:
    return reverse("admin:sessions_app_toolroutersession_change", args=[session.pk])


def header_nav(html: str) -> list[str]:
    """The labels of the console's navigation in an admin page's header."""
    nav = re.search(r'<nav class="console-nav"[^>]*>(.*?)</nav>', html, re.S)
    return re.findall(r">([^<]+)</a>", nav.group(1)) if nav else []


# --- The admin's header carries the console's navigation ----------------------------------------


@pytest.mark.parametrize(
    ("who", "links"),
    [
        ("support_user", ["Lookup", "Admin"]),
        ("session_admin", ["Lookup", "Bulk jobs", "Admin"]),
        ("auditor", ["Audit log", "Access report", "Admin"]),
    ],
)
def test_the_admin_header_carries_the_console_navigation_of_each_role(
    request: pytest.FixtureRequest, who: str, links: list[str]
) -> None:
    # The problem: the admin had no links to Lookup, Audit or Jobs; only "View site".
    client = client_for(request.getfixturevalue(who))
    for url in (reverse("admin:index"), reverse("admin:sessions_app_enduser_changelist")):
        html = client.get(url).content.decode()
        assert header_nav(html) == links, (who, url)
        assert "View site" not in html


def test_the_view_only_admin_has_a_way_back_to_the_console(
    auditor: User, alices_session: ToolRouterSession
) -> None:
    """The problem: the only way back from the view-only admin was "View site"."""
    html = client_for(auditor).get(session_page(alices_session)).content.decode()
    assert '<a href="/audit/events/">Audit log</a>' in html
    assert '<div id="site-name"><a href="/">' in html


def test_the_admin_login_page_has_no_navigation(client: Client) -> None:
    html = client.get(reverse("admin:login")).content.decode()
    assert header_nav(html) == [] and "console-nav" not in html


# --- A card links to the admin pages; the admin pages link back to the card ----------------------


@pytest.mark.parametrize("who", ["support_user", "session_admin"])
def test_a_card_links_to_the_admin_pages_of_its_user_and_session(
    request: pytest.FixtureRequest, who: str, alice: EndUser, alices_session: ToolRouterSession
) -> None:
    # The problem: a card had no "open in admin".
    client = client_for(request.getfixturevalue(who))
    html = client.get(card_of(alice)).content.decode()
    assert "Open in admin:" in html
    assert f'<a href="{enduser_page(alice)}">end user</a>' in html
    assert f'<a href="{session_page(alices_session)}">session</a>' in html
    # Both pages open for them (read-only for Support).
    assert client.get(enduser_page(alice)).status_code == HTTPStatus.OK
    assert client.get(session_page(alices_session)).status_code == HTTPStatus.OK


def test_a_card_without_a_session_links_only_to_the_end_user(
    support_user: User, alice: EndUser
) -> None:
    html = client_for(support_user).get(card_of(alice)).content.decode()
    assert f'<a href="{enduser_page(alice)}">end user</a>' in html
    assert ">session</a>" not in html


@pytest.mark.parametrize("admin_page", ["end user", "session"])
@pytest.mark.parametrize("who", ["support_user", "session_admin"])
def test_the_admin_pages_of_a_user_link_back_to_the_card(
    request: pytest.FixtureRequest,
    who: str,
    admin_page: str,
    alice: EndUser,
    alices_session: ToolRouterSession,
) -> None:
    url = enduser_page(alice) if admin_page == "end user" else session_page(alices_session)
    html = client_for(request.getfixturevalue(who)).get(url).content.decode()
    assert f'<a href="{card_of(alice)}" class="support-card-link">Support card</a>' in html


@pytest.mark.parametrize("admin_page", ["end user", "session"])
def test_the_auditor_s_admin_pages_offer_no_card_they_may_not_open(
    auditor: User, admin_page: str, alice: EndUser, alices_session: ToolRouterSession
) -> None:
    url = enduser_page(alice) if admin_page == "end user" else session_page(alices_session)
    client = client_for(auditor)
    response = client.get(url)
    assert response.status_code == HTTPStatus.OK
    assert "Support card" not in response.content.decode()
    assert client.get(card_of(alice)).status_code == HTTPStatus.FORBIDDEN


def test_anonymous_visitors_of_the_linked_pages_are_sent_to_log_in(
    client: Client, alice: EndUser, alices_session: ToolRouterSession
) -> None:
    for url in (card_of(alice), enduser_page(alice), session_page(alices_session)):
        response = client.get(url)
        assert response.status_code == HTTPStatus.FOUND and "login" in response["Location"]


# --- Admin refusals are the console's refusal page ----------------------------------------------


def refusal_text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_a_view_only_user_changing_an_end_user_gets_the_refusal_page_naming_the_role(
    support_user: User, alice: EndUser
) -> None:
    # The problem: admin refusals were Django's bare "403 Forbidden".
    before = fresh_refusal_windows()
    response = client_for(support_user).post(enduser_page(alice), {"external_id": "usr_bob"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    text = refusal_text(response.content.decode())
    assert "Refused You may not change end users." in text
    assert "This needs the Session admin role" in text
    assert "403 Forbidden" not in text
    # The console's page: its header and navigation.
    assert 'class="topbar"' in response.content.decode()
    event = AuditEvent.objects.get(action="access.refused", sequence__gt=before)
    assert event.details["operation"] == "admin.change_enduser"
    assert event.details["missing"] == ["sessions_app.change_enduser"]
    alice.refresh_from_db()
    assert alice.external_id == "usr_alice"


def test_an_auditor_adding_an_end_user_is_told_which_role_may(auditor: User) -> None:
    response = client_for(auditor).get(reverse("admin:sessions_app_enduser_add"))
    assert response.status_code == HTTPStatus.FORBIDDEN
    text = refusal_text(response.content.decode())
    assert "You may not add end users." in text and "Session admin role" in text


def test_a_refused_admin_action_is_the_refusal_page_with_the_action_and_role(
    support_user: User, catalog: Emulator, end_users: list[EndUser]
) -> None:
    client = client_for(support_user)
    response = admin_action_confirmed(client, "refresh_sessions", end_users[:1], follow=False)
    assert response.status_code == HTTPStatus.FORBIDDEN
    text = refusal_text(response.content.decode())
    assert "You may not run the admin action “Refresh Tool Router session”." in text
    assert "This needs the Session admin role" in text
    assert catalog.requests == []


def test_repeated_admin_refusals_are_coalesced_like_every_other(
    support_user: User, alice: EndUser
) -> None:
    """The one refusal path: admin refusals go through access.refuse, so a refusing loop writes
    one event and a counted summary, not one event each."""
    fresh_refusal_windows()
    before = AuditEvent.objects.filter(action="access.refused").count()
    client = client_for(support_user)
    for _ in range(3):
        response = client.post(enduser_page(alice), {"external_id": "usr_bob"})
        assert response.status_code == HTTPStatus.FORBIDDEN
    assert AuditEvent.objects.filter(action="access.refused").count() == before + 1
    refusals.close_windows()
    assert refusals_counted()[(support_user.username, "admin.change_enduser")] == 3


def test_the_admin_refusal_fragment_for_htmx_is_the_console_s(
    auditor: User, alice: EndUser
) -> None:
    response = client_for(auditor).post(
        enduser_page(alice), {"external_id": "x"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert 'class="message message-error"' in response.content.decode()


# --- Admin action results list what changed -----------------------------------------------------


def changed_lines(response) -> list[str]:
    heads = ("New session:", "New sessions:", "Deleted session:", "Deleted sessions:")
    return [m for m in messages_of(response) if m.startswith(heads)]


def link(end_user: EndUser, session_id: str) -> str:
    return (
        f'<a href="{card_of(end_user)}" class="mono">{short_id(session_id)}</a> '
        f"({end_user.external_id})"
    )


def test_create_results_list_the_new_session_ids_linked_to_the_cards(
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser]
) -> None:
    # The problem: admin action results gave counts but not the new session ids.
    response = admin_action_confirmed(
        session_admin_client, "create_sessions", end_users[:2], ["github"]
    )
    made = {s.end_user_id: s.session_id for s in ToolRouterSession.objects.all()}
    expected = ", ".join(link(u, made[u.pk]) for u in end_users[:2])
    assert changed_lines(response) == [f"New sessions: {expected}."]
    # Rendered as links, not as escaped text.
    html = response.content.decode()
    assert link(end_users[0], made[end_users[0].pk]) in html


def test_one_refresh_lists_the_one_new_session_in_the_singular(
    session_admin_client: Client, alice: EndUser, alices_session: ToolRouterSession
) -> None:
    response = admin_action_confirmed(
        session_admin_client, "refresh_sessions", [alice], [], keep_current="on"
    )
    new = ToolRouterSession.objects.get(end_user=alice, status="active")
    assert new.pk != alices_session.pk
    assert changed_lines(response) == [f"New session: {link(alice, new.session_id)}."]
    assert "2 end users" not in " ".join(messages_of(response))


def test_delete_results_list_the_deleted_sessions(
    session_admin_client: Client, alice: EndUser, alices_session: ToolRouterSession
) -> None:
    response = admin_action_confirmed(session_admin_client, "delete_sessions", [alice])
    assert changed_lines(response) == [
        f"Deleted session: {link(alice, alices_session.session_id)}."
    ]


def test_skipped_users_are_not_listed_as_changed(
    session_admin_client: Client, catalog: Emulator, end_users: list[EndUser], session_admin: User
) -> None:
    give_session(end_users[0], ["github"], session_admin)
    response = admin_action_confirmed(
        session_admin_client, "create_sessions", end_users[:2], ["github"]
    )
    [line] = changed_lines(response)
    assert line.startswith("New session: ") and "(usr_2)" in line and "(usr_1)" not in line


def test_a_superuser_without_a_role_sees_the_ids_linked_too(
    catalog: Emulator, end_users: list[EndUser]
) -> None:
    root = User.objects.create_superuser("root_links", password="x")
    response = admin_action_confirmed(
        client_for(root), "create_sessions", end_users[:1], ["github"]
    )
    [line] = changed_lines(response)
    session = ToolRouterSession.objects.get(end_user=end_users[0])
    assert line == f"New session: {link(end_users[0], session.session_id)}."
    assert masked_id_text(session.session_id) not in line
