"""Bad input in the forms: adding and editing end users, the CSV import, the login page, and
console posts naming unknown objects. Nothing answers 500 or writes anything but what the view is
documented to write for rejected input:

- a rejected CSV import: exactly one `enduser.import` event with outcome `rejected`;
- a failed login: exactly one `auth.login_failed` event, plus django-axes' own attempt records.

An over-long login username crashes Django's login on PostgreSQL (not the console's code): it has
a test of its own, which fails until it is fixed.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from sessions_app.models import EndUser
from tests.access_matrix import access_url
from tests.bad_input import (
    CONTROL,
    FUZZ,
    LONG,
    VALUES,
    Watch,
    harmless,
    no_server_error,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords", "emulator")]

# --- POST: forms -------------------------------------------------------------------------------

BAD_EXTERNAL_IDS = st.one_of(
    st.sampled_from(
        [
            "",
            "default",
            "DEFAULT",
            "x" * 129,
            "has space",
            "tab\there",
            "usr_аccess",
            "caf\u00e9",
            "a\x00b",
            "bell\x07",
        ]
    ),
    st.text(min_size=1, max_size=40).filter(lambda v: any(not ("!" <= c <= "~") for c in v)),
    LONG,
)


def test_adding_an_end_user_with_a_bad_external_id_writes_nothing(root_client: Client) -> None:
    @FUZZ
    @given(external_id=BAD_EXTERNAL_IDS, display_name=VALUES, email=VALUES)
    def check(external_id: str, display_name: str, email: str) -> None:
        data = {"external_id": external_id, "display_name": display_name, "email": email}
        response = harmless(root_client.post, "/admin/sessions_app/enduser/add/", data)
        assert response.status_code == HTTPStatus.OK

    check()


def test_editing_an_end_user_with_bad_values_writes_nothing(
    access_world: dict[str, Any], root_client: Client
) -> None:
    target = access_url("/admin/sessions_app/enduser/{enduser}/change/", access_world)

    @FUZZ
    @given(
        external_id=BAD_EXTERNAL_IDS,
        email=VALUES.filter(lambda v: v.strip() != "" and "@" not in v),
    )
    def check(external_id: str, email: str) -> None:
        watch = Watch()
        data = {
            "external_id": external_id,
            "display_name": "x",
            "email": email,
            "sessions-TOTAL_FORMS": "0",
            "sessions-INITIAL_FORMS": "0",
        }
        no_server_error(root_client.post(target, data))
        watch.assert_wrote([])

    check()


IMPORT_ROWS = st.lists(
    st.tuples(st.one_of(BAD_EXTERNAL_IDS, VALUES), VALUES, VALUES).map(
        lambda row: ",".join('"' + c.replace('"', '""') + '"' for c in row)
    ),
    max_size=8,
)


def test_random_csv_uploads_preview_or_refuse_and_write_at_most_the_rejection(
    root_client: Client,
) -> None:
    @FUZZ
    @given(
        content=st.one_of(
            st.binary(max_size=2000),
            IMPORT_ROWS.map(lambda rows: "\n".join(["external_id,name,email", *rows]).encode()),
            st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
        ),
        name=st.sampled_from(["users.csv", "users.txt", "", "../x.csv", "\x00.csv", "а.csv"]),
    )
    def check(content: bytes, name: str) -> None:
        watch = Watch()
        upload = SimpleUploadedFile(name or "x", content, content_type="text/csv")
        response = no_server_error(
            root_client.post("/admin/sessions_app/enduser/import/", {"csv_file": upload})
        )
        assert response.status_code == HTTPStatus.OK
        assert watch.events() in ([], [("enduser.import", "rejected")])
        watch.assert_wrote(watch.events())

    check()


def test_a_confirmed_import_of_random_text_is_refused_with_one_rejected_event(
    root_client: Client,
) -> None:
    users = EndUser.objects.count()

    @FUZZ
    @given(text=st.one_of(st.text(max_size=500), LONG, CONTROL))
    def check(text: str) -> None:
        watch = Watch()
        data = {"post": "yes", "token": text}
        no_server_error(root_client.post("/admin/sessions_app/enduser/import/", data))
        watch.assert_wrote([("enduser.import", "rejected")])

    check()
    assert EndUser.objects.count() == users


def test_random_login_attempts_write_one_failed_login_and_axes_records_only(
    access_world: dict[str, Any],
) -> None:
    axes_tables = ["axes.accessattempt", "axes.accessfailurelog", "axes.accesslog"]

    @FUZZ
    @given(username=VALUES, password=VALUES, next_url=VALUES)
    def check(username: str, password: str, next_url: str) -> None:
        watch = Watch()
        data = {"login": username, "password": password, "next": next_url}
        response = no_server_error(Client().post("/accounts/login/", data))
        assert response.status_code != HTTPStatus.FOUND  # nobody got in
        assert watch.events() in ([], [("auth.login_failed", "failure")])
        watch.assert_wrote(watch.events(), allowed=axes_tables)

    check()


def test_an_over_long_username_at_login_is_refused_not_a_server_error() -> None:
    # Found by this suite, on PostgreSQL only: Django's AuthenticationForm does not enforce the
    # username's length, so authenticate() runs and django-axes stores the attempt in a
    # varchar(255) (DataError, a 500).
    data = {"login": "a" * 256, "password": "wrong"}
    response = no_server_error(Client().post("/accounts/login/", data))
    assert response.status_code != HTTPStatus.FOUND


# --- POST: ids in the path of console actions --------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "/support/sessions/{}/reveal/",
        "/support/users/{}/refresh/",
        "/jobs/{}/cancel/",
        "/jobs/{}/retry/",
    ],
)
def test_console_posts_for_unknown_objects_answer_404_and_write_nothing(
    template: str, root_client: Client
) -> None:
    @FUZZ
    @given(segment=st.one_of(st.uuids().map(str), VALUES))
    def check(segment: str) -> None:
        response = harmless(root_client.post, template.replace("{}", quote(segment, safe="")))
        assert response.status_code == HTTPStatus.NOT_FOUND

    check()
