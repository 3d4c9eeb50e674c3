"""Each role lands where its work is, after logging in through the login form, and the
navigation offers only the pages its user may open. Landing never writes a refusal."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from sessions_app.models import AuditEvent
from tests.factories import make_staff_with
from tests.helpers import fresh_refusal_windows

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

NAV = ("Lookup", "Bulk jobs", "Audit log", "Access report", "Admin")

# role fixture -> (where it lands, the navigation links it sees; every other one of NAV is absent)
LANDINGS: dict[str, tuple[str, set[str]]] = {
    "support_user": ("/support/", {"Lookup", "Admin"}),
    "session_admin": ("/support/", {"Lookup", "Bulk jobs", "Admin"}),
    "auditor": ("/audit/events/", {"Audit log", "Access report", "Admin"}),
    "outsider": ("/", set()),
    "admin_user": ("/support/", set(NAV)),
}


def password_of(user: User) -> str:
    """The factories' "pw-<username>"; pytest-django's superuser has "password"."""
    return "password" if user.is_superuser else f"pw-{user.username}"


def log_in(client: Client, user: User, next_url: str = "") -> Any:
    """The login form posted, redirects followed."""
    data = {"login": user.username, "password": password_of(user)}
    if next_url:
        data["next"] = next_url
    return client.post("/accounts/login/", data, follow=True)


def nav_labels(response: Any) -> set[str]:
    header = re.search(r'<header class="topbar">(.*?)</header>', response.content.decode(), re.S)
    assert header, "the page has no top bar"
    return set(re.findall(r"<a [^>]*>([^<]+)</a>", header[1])) & set(NAV)


def refusals_since(mark: int) -> int:
    return AuditEvent.objects.filter(action="access.refused", sequence__gt=mark).count()


@pytest.mark.parametrize("role", list(LANDINGS))
def test_each_role_lands_on_its_own_page_with_its_own_navigation(
    role: str, request: pytest.FixtureRequest
) -> None:
    user = request.getfixturevalue(role)
    landing, links = LANDINGS[role]
    mark = fresh_refusal_windows()

    response = log_in(Client(), user)

    assert response.status_code == 200
    assert response.request["PATH_INFO"] == landing
    assert refusals_since(mark) == 0
    assert nav_labels(response) == links


def test_a_user_with_no_role_is_told_so_not_refused(outsider: User) -> None:
    response = log_in(Client(), outsider)

    page = response.content.decode()
    assert "No role yet" in page
    assert "Refused" not in page


def test_anonymous_visitors_land_on_the_login_page() -> None:
    mark = fresh_refusal_windows()

    response = Client().get("/", follow=True)

    assert response.status_code == 200
    assert response.request["PATH_INFO"] == "/accounts/login/"
    assert response.redirect_chain == [("/accounts/login/?next=/", 302)]
    assert refusals_since(mark) == 0
    assert nav_labels(response) == set()


def test_a_safe_next_wins_over_the_landing(auditor: User) -> None:
    response = log_in(Client(), auditor, next_url="/audit/access/")

    assert response.status_code == 200
    assert response.request["PATH_INFO"] == "/audit/access/"


@pytest.mark.parametrize("unsafe", ["https://evil.example/", "//evil.example/audit/"])
def test_an_unsafe_next_is_ignored_for_the_landing(auditor: User, unsafe: str) -> None:
    response = log_in(Client(), auditor, next_url=unsafe)

    assert response.request["PATH_INFO"] == "/audit/events/"


def test_the_root_page_honours_a_safe_next_and_ignores_an_unsafe_one(auditor: User) -> None:
    client = Client()
    client.force_login(auditor)

    assert client.get("/", {"next": "/audit/access/"})["Location"] == "/audit/access/"
    assert client.get("/", {"next": "https://evil.example/"})["Location"] == "/audit/events/"


def test_an_auditor_who_reads_only_the_access_report_lands_on_it() -> None:
    reader = make_staff_with("rita_reports", ["sessions_app.view_access_report"])
    mark = fresh_refusal_windows()

    response = log_in(Client(), reader)

    assert response.request["PATH_INFO"] == "/audit/access/"
    assert response.status_code == 200
    assert refusals_since(mark) == 0
    assert nav_labels(response) == {"Access report"}
