"""Bad input over the whole access matrix: every URL refuses a POST without a CSRF token (403)
and writes nothing; the POST endpoints answer as the matrix says once the token is sent; and no
GET, for any role, writes anything but the `access.refused` event its matrix entry says it writes.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import pytest

from tests.access_matrix import ROLES, ROWS, access_placeholders, access_url, answer
from tests.bad_input import REFUSED, WATCHED, Watch, no_server_error
from tests.factories import client_for

pytestmark = pytest.mark.usefixtures("fast_passwords")

# --- CSRF --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["anonymous", "superuser"])
def test_every_url_refuses_a_post_without_a_csrf_token_and_writes_nothing(
    role: str, access_world: dict[str, Any], emulator: Any
) -> None:
    client = client_for(access_world["users"][role], enforce_csrf_checks=True)
    let_through = []
    for row in ROWS:
        watch = Watch()
        response = client.post(
            access_url(row.url, access_world), {"action": "allow_toolkits", "post": "yes"}
        )
        if response.status_code != HTTPStatus.FORBIDDEN or b"CSRF" not in response.content:
            let_through.append(f"{row.route}: {response.status_code}")
        assert watch.changed_tables() == [], row.route
        assert watch.events() == [], row.route
    assert let_through == []


@pytest.mark.django_db
def test_post_endpoints_answer_as_the_matrix_says_once_the_token_is_sent(
    access_world: dict[str, Any], emulator: Any
) -> None:
    wrong = []
    for row in (r for r in ROWS if r.method == "POST"):
        client = client_for(access_world["users"]["superuser"], enforce_csrf_checks=True)
        client.get("/accounts/logout/")  # a form page: sets the csrftoken cookie
        token = client.cookies["csrftoken"].value
        values = access_placeholders(access_world)
        data = row.post_data(values)
        response = client.post(row.url.format(**values), data, headers={"X-CSRFToken": token})
        if answer(response) != row.expected["superuser"].removesuffix(" audited"):
            wrong.append(f"{row.route}: {answer(response)}")
    assert wrong == []


# --- GETs have no side effects -----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_no_get_writes_anything_but_the_refusal_the_matrix_documents(
    role: str, access_world: dict[str, Any], emulator: Any
) -> None:
    client = client_for(access_world["users"][role])
    wrong = []
    for row in (r for r in ROWS if r.method == "GET"):
        watch = Watch()
        no_server_error(client.get(access_url(row.url, access_world)))
        expected = REFUSED if row.expected[role].endswith("audited") else []
        changed, events = watch.changed_tables(), watch.events()
        if changed or events != expected:
            wrong.append(f"GET {row.url}: tables {changed}, events {events}")
    assert wrong == []


def test_the_watch_covers_every_table_but_the_django_session() -> None:
    watched = {m._meta.db_table for m in WATCHED}
    assert "django_session" not in watched
    for table in (
        "sessions_app_enduser",
        "sessions_app_auditevent",
        "auth_user",
        "auth_user_groups",
        "auth_group",
        "axes_accessattempt",
        "django_admin_log",
    ):
        assert table in watched
    assert re.search(r"task", " ".join(sorted(watched)))
