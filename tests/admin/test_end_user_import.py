"""Importing end users from CSV in the admin: bad rows previewed, nothing written if malformed."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from sessions_app import refusals
from sessions_app.models import AuditEvent, EndUser
from tests.factories import ENDUSER_CHANGELIST, client_for
from tests.helpers import messages_of, refusals_counted

pytestmark = pytest.mark.django_db

GOOD_AND_BAD = (
    "external_id,name,email\n"
    "usr_a,Ada Lovelace,ada@example.com\n"
    "usr_b,Grace Hopper,\n"
    "default,Shared,shared@example.com\n"
    "has space,Spacey,s@example.com\n"
    "usr_a,Ada Again,ada2@example.com\n"
    "usr_old,Already Here,old@example.com\n"
    "usr_c,Bad Mail,not-an-email\n"
)


def import_url() -> str:
    return reverse("admin:sessions_app_enduser_import")


def upload(client: Client, text: str | bytes, name: str = "users.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(import_url(), {"csv_file": SimpleUploadedFile(name, data, "text/csv")})


def test_the_preview_lists_each_bad_row_and_why_and_writes_nothing(
    session_admin_client: Client,
) -> None:
    EndUser.objects.create(external_id="usr_old")

    response = upload(session_admin_client, GOOD_AND_BAD)

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "2 rows ready to import, 5 rejected" in html
    assert "Composio&#x27;s shared user id" in html
    assert "whitespace" in html
    assert "appears earlier in the file" in html
    assert "already exists" in html
    assert "email address is not valid" in html
    assert EndUser.objects.count() == 1


def test_confirming_imports_only_the_valid_rows_and_audits_it(session_admin_client: Client) -> None:
    EndUser.objects.create(external_id="usr_old")

    response = session_admin_client.post(
        import_url(), {"csv_text": GOOD_AND_BAD, "post": "yes"}, follow=True
    )

    assert "Imported 2 end users; 5 rows were skipped." in messages_of(response)
    assert set(EndUser.objects.values_list("external_id", flat=True)) == {
        "usr_old",
        "usr_a",
        "usr_b",
    }
    assert EndUser.objects.get(external_id="usr_a").display_name == "Ada Lovelace"
    event = AuditEvent.objects.get(action="enduser.import")
    assert event.outcome == "success" and event.details["created"] == 2


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\xff\xfe\x00bad", "not UTF-8"),
        ("id,name\nusr_a,Ada\n", "header external_id,name,email"),
        ("external_id,name,email\nusr_a,Ada,a@x.io\nusr_b,Bea\n", "Row 3 has 2 columns"),
        ("external_id,name,email\n", "no rows"),
        ("", "empty"),
    ],
)
def test_a_malformed_file_is_refused_and_writes_nothing(
    session_admin_client: Client, content: str | bytes, fragment: str
) -> None:
    response = upload(session_admin_client, content)

    assert response.status_code == HTTPStatus.OK
    assert fragment in response.content.decode()
    assert not EndUser.objects.exists()

    session_admin_client.post(import_url(), {"csv_text": content, "post": "yes"})
    assert not EndUser.objects.exists()


def test_import_needs_the_add_permission(client: Client, support_user: User) -> None:
    client.force_login(support_user)

    assert client.get(import_url()).status_code == HTTPStatus.FORBIDDEN
    response = client.post(import_url(), {"csv_text": GOOD_AND_BAD, "post": "yes"})

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not EndUser.objects.exists()
    # Both refusals are audited: the second (in the same minute) in its window's summary.
    refusals.close_windows()
    assert refusals_counted() == {(support_user.username, "enduser.import"): 2}


def test_import_page_needs_a_login(client: Client) -> None:
    response = client.get(import_url())
    assert response.status_code == HTTPStatus.FOUND and "login" in response.url


def test_the_changelist_links_to_the_import_for_admins_only(
    session_admin_client: Client, support_user: User
) -> None:
    changelist = reverse(ENDUSER_CHANGELIST)
    assert import_url() in session_admin_client.get(changelist).content.decode()
    assert import_url() not in client_for(support_user).get(changelist).content.decode()
