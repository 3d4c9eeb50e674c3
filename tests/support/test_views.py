"""The support console's pages: who may open them, fragments vs. pages, what a person sees."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sessions_app import refusals
from sessions_app.models import AuditEvent, EndUser, SessionToolkit, Toolkit
from tests.factories import HX, client_for, make_end_user, store_deleted_session, store_session
from tests.helpers import refusals_counted

pytestmark = pytest.mark.django_db

MCP_URL = "https://mcp.example.test/tool_router/trs_alpha0000001/mcp?token=SECRETPART"


@pytest.fixture
def alpha(db: None) -> EndUser:
    user = make_end_user("usr_alpha", "Ada Lovelace", "ada@example.com")
    store_session(user, "trs_alpha0000001", mcp_url=MCP_URL, toolkits=["github", "gmail"])
    return user


def _get_urls(end_user: EndUser) -> list[str]:
    session = end_user.sessions.get(status="active")
    return [
        reverse("sessions_app:support_lookup") + "?q=usr",
        reverse("sessions_app:support_attention"),
        reverse("sessions_app:support_user_card", args=[end_user.public_id]),
        reverse("sessions_app:support_user_row", args=[end_user.public_id]),
        reverse("sessions_app:support_session_connections", args=[session.public_id]),
    ]


# --- Permission matrix -------------------------------------------------------------------------


def test_every_support_page_sends_anonymous_visitors_to_the_login_page(alpha: EndUser) -> None:
    session = alpha.sessions.get()
    urls = [
        *_get_urls(alpha),
        reverse("sessions_app:support_session_refresh", args=[alpha.public_id]),
    ]
    for url in urls:
        response = Client().get(url)
        assert response.status_code == HTTPStatus.FOUND, url
        assert response["Location"].startswith("/accounts/login/?next="), url
    reveal = reverse("sessions_app:support_mcp_reveal", args=[session.public_id])
    response = Client().post(reveal)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/login/")
    assert not AuditEvent.objects.filter(action="mcp_url.reveal").exists()


@pytest.mark.parametrize("actor", ["auditor", "outsider"])
def test_auditors_and_staff_without_a_role_are_refused_every_support_page_and_it_is_audited(
    alpha: EndUser, actor: str, request: pytest.FixtureRequest
) -> None:
    user = request.getfixturevalue(actor)
    client = client_for(user)
    urls = _get_urls(alpha)
    for url in urls:
        response = client.get(url)
        assert response.status_code == HTTPStatus.FORBIDDEN, url
        assert b"usr_alpha" not in response.content
    refused = AuditEvent.objects.filter(action="access.refused", actor=user)
    assert refused.count() == len(urls)
    assert {e.outcome for e in refused} == {AuditEvent.Outcome.REFUSED}


@pytest.mark.parametrize("actor", ["support_user", "session_admin"])
def test_support_and_session_admins_can_open_every_support_page(
    alpha: EndUser, actor: str, request: pytest.FixtureRequest, emulator
) -> None:
    client = client_for(request.getfixturevalue(actor))
    for url in _get_urls(alpha):
        response = client.get(url, headers=HX)
        assert response.status_code == HTTPStatus.OK, url


def test_superusers_can_open_the_lookup() -> None:
    root = User.objects.create_superuser("root", password="pw-root")
    response = client_for(root).get(reverse("sessions_app:support_lookup"))
    assert response.status_code == HTTPStatus.OK


def test_refresh_is_refused_to_support_without_the_refresh_permission(
    alpha: EndUser, support_user: User
) -> None:
    url = reverse("sessions_app:support_session_refresh", args=[alpha.public_id])
    client = client_for(support_user)
    assert client.get(url).status_code == HTTPStatus.FORBIDDEN
    assert client.post(url).status_code == HTTPStatus.FORBIDDEN
    # Both refusals are audited: the second (in the same minute) in its window's summary.
    refusals.close_windows()
    assert refusals_counted() == {(support_user.username, "support_session_refresh"): 2}
    assert list(alpha.sessions.values_list("status", flat=True)) == ["active"]


def test_session_admins_get_the_refresh_confirmation(alpha: EndUser, session_admin: User) -> None:
    url = reverse("sessions_app:support_session_refresh", args=[alpha.public_id])
    response = client_for(session_admin).get(url, headers=HX)
    assert response.status_code == HTTPStatus.OK
    assert b"Yes, refresh" in response.content
    assert b"<html" not in response.content


def test_a_user_with_only_the_view_permissions_is_refused(alpha: EndUser) -> None:
    viewer = User.objects.create_user("vic_viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_enduser", "view_toolroutersession"])
    )
    response = client_for(viewer).get(reverse("sessions_app:support_lookup"))
    assert response.status_code == HTTPStatus.FORBIDDEN


# --- Fragments, pages, Vary --------------------------------------------------------------------


def test_htmx_lookup_gets_a_fragment_and_a_direct_load_the_full_page(
    alpha: EndUser, support_user: User
) -> None:
    client = client_for(support_user)
    url = reverse("sessions_app:support_lookup") + "?q=usr_al"
    fragment = client.get(url, headers=HX)
    page = client.get(url)
    assert b"<html" not in fragment.content and b"usr_alpha" in fragment.content
    assert b"<html" in page.content and b"usr_alpha" in page.content
    # The plain page keeps the query in the search box (the URL reflects the query).
    assert b'value="usr_al"' in page.content
    for response in (fragment, page):
        assert "HX-Request" in response["Vary"]


def test_a_history_restore_request_gets_the_full_page(alpha: EndUser, support_user: User) -> None:
    client = client_for(support_user)
    url = reverse("sessions_app:support_user_card", args=[alpha.public_id])
    response = client.get(url, headers={**HX, "HX-History-Restore-Request": "true"})
    assert b"<html" in response.content
    assert b"usr_alpha" in response.content
    assert "HX-Request" in response["Vary"]


def test_the_card_shows_the_user_session_toolkits_and_a_masked_url(
    alpha: EndUser, support_user: User
) -> None:
    session = alpha.sessions.get()
    # Its toolkit links name GitHub (gmail has no catalog row: its slug stands for its name).
    github = Toolkit.objects.create(slug="github", name="GitHub")
    SessionToolkit.objects.create(session=session, toolkit=github)
    client = client_for(support_user)
    url = reverse("sessions_app:support_user_card", args=[alpha.public_id])
    for response in (client.get(url, headers=HX), client.get(url)):
        html = response.content.decode()
        assert "usr_alpha" in html and "Ada Lovelace" in html and "ada@example.com" in html
        assert "trs_alpha0000001" in html
        assert "https://mcp.example.test/" in html
        assert session.mcp_url not in html and "SECRETPART" not in html
        assert 'title="GitHub">github<' in html and 'title="gmail">gmail<' in html
        assert "Reveal" in html
        assert "Refresh session" not in html  # Support has no refresh permission


def test_the_card_offers_refresh_only_to_staff_who_may_refresh(
    alpha: EndUser, session_admin: User
) -> None:
    url = reverse("sessions_app:support_user_card", args=[alpha.public_id])
    response = client_for(session_admin).get(url, headers=HX)
    assert b"Refresh session" in response.content


def test_the_card_lists_superseded_and_deleted_sessions_with_who_and_when(
    support_user: User, session_admin: User
) -> None:
    user = make_end_user("usr_hist", "Ada Lovelace", "ada@example.com")
    store_deleted_session(user, "trs_hist_deleted", session_admin, created_by=support_user)
    old = store_session(user, "trs_hist_old", status="superseded", superseded_at=timezone.now())
    store_session(user, "trs_hist_new", replaces=old, created_by=session_admin)
    response = client_for(support_user).get(
        reverse("sessions_app:support_user_card", args=[user.public_id]), headers=HX
    )
    html = response.content.decode()
    assert "trs_hist_deleted" in html and "trs_hist_old" in html
    assert "superseded" in html and "deleted" in html
    assert "by ada_admin" in html  # who replaced the old one and who deleted the other


def test_an_unknown_user_card_is_a_404(support_user: User) -> None:
    url = reverse("sessions_app:support_user_card", args=["00000000-0000-0000-0000-000000000000"])
    assert client_for(support_user).get(url).status_code == HTTPStatus.NOT_FOUND


def test_the_full_mcp_url_is_absent_from_every_get_response(
    alpha: EndUser, session_admin: User, emulator
) -> None:
    client = client_for(session_admin)
    session = alpha.sessions.get()
    for url in [
        *_get_urls(alpha),
        reverse("sessions_app:support_session_refresh", args=[alpha.public_id]),
    ]:
        for headers in ({}, HX):
            response = client.get(url, headers=headers)
            assert session.mcp_url.encode() not in response.content, url
            assert b"SECRETPART" not in response.content, url
            assert "SECRETPART" not in response.get("Location", "")


def test_the_lookup_page_focuses_the_search_box_and_shows_the_emulator_banner(
    support_user: User, settings
) -> None:
    settings.COMPOSIO_API_KEY = ""
    response = client_for(support_user).get(reverse("sessions_app:support_lookup"))
    html = response.content.decode()
    assert 'name="q"' in html and "autofocus" in html
    assert "Emulated" in html
    assert "<script>" not in html  # no inline script: a strict CSP comes later


def test_reveal_is_post_only(alpha: EndUser, support_user: User) -> None:
    session = alpha.sessions.get()
    url = reverse("sessions_app:support_mcp_reveal", args=[session.public_id])
    response = client_for(support_user).get(url)
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert session.mcp_url.encode() not in response.content


def test_an_htmx_request_after_the_session_ended_gets_a_log_in_again_fragment(
    alpha: EndUser,
) -> None:
    response = Client().get(
        reverse("sessions_app:support_lookup"),
        {"q": "usr"},
        headers={**HX, "HX-Current-URL": "http://testserver/support/?q=usr"},
        follow=True,
    )
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "<html" not in html
    assert "Log in again" in html and "next=/support/%3Fq%3Dusr" in html
    assert "usr_alpha" not in html


def test_the_login_page_is_a_full_page_without_htmx() -> None:
    response = Client().get(reverse("login"))
    assert b"<html" in response.content and b'name="password"' in response.content
