"""Importing end users from CSV in the admin: bad rows previewed, nothing written if malformed."""

from __future__ import annotations

from collections import Counter
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from sessions_app import refusals, roles
from sessions_app.models import AuditEvent, EndUser
from tests.factories import ENDUSER_CHANGELIST, client_for, make_staff
from tests.helpers import ON_POSTGRESQL, messages_of, refusals_counted, run_together

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


def staged_token(client: Client, text: str | bytes) -> str:
    """Upload a file and return the token its preview's confirm form posts."""
    response = upload(client, text)
    token = response.context["token"]
    assert token and f'name="token" value="{token}"' in response.content.decode()
    return token


def confirm(client: Client, token: str, **extra: object):
    return client.post(import_url(), {"token": token, "post": "yes"}, **extra)


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
    token = staged_token(session_admin_client, GOOD_AND_BAD)
    assert EndUser.objects.count() == 1

    response = confirm(session_admin_client, token, follow=True)

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
    assert "token" not in response.context
    assert not EndUser.objects.exists()


def test_import_needs_the_add_permission(client: Client, support_user: User) -> None:
    client.force_login(support_user)

    assert client.get(import_url()).status_code == HTTPStatus.FORBIDDEN
    response = confirm(client, "any-token")

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


def test_the_confirm_form_carries_only_a_token_never_the_file(session_admin_client: Client) -> None:
    response = upload(session_admin_client, GOOD_AND_BAD)

    confirm_form = (
        response.content.decode().split('name="post" value="yes"')[0].rsplit("<form", 1)[1]
    )
    assert "Grace Hopper" not in confirm_form and "textarea" not in confirm_form
    assert len(token := response.context["token"]) < 200
    assert signing.loads(token, salt="sessions_app.end_user_import.staged")["by"] == (
        User.objects.get(username="ada_admin").pk
    )


def test_a_token_imports_once(session_admin_client: Client) -> None:
    token = staged_token(session_admin_client, GOOD_AND_BAD)
    confirm(session_admin_client, token)
    assert EndUser.objects.count() == 3

    response = confirm(session_admin_client, token, follow=True)

    assert "expired or was already imported" in " ".join(messages_of(response))
    assert EndUser.objects.count() == 3
    assert list(
        AuditEvent.objects.filter(action="enduser.import")
        .order_by("id")
        .values_list("outcome", flat=True)
    ) == ["success", "rejected"]


@pytest.mark.parametrize("forge", ["another user", "edited", "expired", "garbage"])
def test_a_forged_expired_or_foreign_token_imports_nothing(
    session_admin_client: Client, forge: str, settings: Any
) -> None:
    token = staged_token(session_admin_client, GOOD_AND_BAD)
    client = session_admin_client
    if forge == "another user":
        client = client_for(make_staff("other_admin", roles.SESSION_ADMIN))
    elif forge == "edited":
        token = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    elif forge == "expired":
        settings.END_USER_IMPORT_STAGED_SECONDS = -1
    else:
        token = "x" * 500

    response = confirm(client, token, follow=True)

    assert "expired or was already imported" in " ".join(messages_of(response))
    assert not EndUser.objects.exists()
    event = AuditEvent.objects.filter(action="enduser.import").latest("id")
    assert event.outcome == "rejected"


def test_a_five_megabyte_non_ascii_csv_imports(session_admin_client: Client) -> None:
    name = "Zoë Ångström-Müller 日本語のなまえ Łódź Ærøskøbing " * 3
    lines = ["external_id,name,email"]
    size = len(lines[0])
    while size < 5 * 1024 * 1024:
        n = len(lines)
        lines.append(f"usr_{n:06d},{name[:190]} {n},u{n}@example.com")
        size += len(lines[-1].encode()) + 1
    data = "\n".join(lines).encode()
    assert len(data) >= 5 * 1024 * 1024

    token = staged_token(session_admin_client, data)
    response = confirm(session_admin_client, token, follow=True)

    rows = len(lines) - 1
    assert f"Imported {rows} end users; 0 rows were skipped." in messages_of(response)
    assert EndUser.objects.count() == rows
    assert EndUser.objects.get(external_id="usr_000001").display_name.startswith("Zoë Ångström")


class TestConfirmsAtOnceOnPostgreSQL:
    pytestmark = ON_POSTGRESQL

    def test_eight_confirms_of_one_token_at_once_import_once(self, session_admin: User) -> None:
        token = staged_token(client_for(session_admin), GOOD_AND_BAD)
        clients = [client_for(session_admin) for _ in range(8)]

        responses = run_together(*[lambda c=c: confirm(c, token) for c in clients])

        landed = Counter(r.url for r in responses)  # type: ignore[union-attr]
        assert landed == {reverse(ENDUSER_CHANGELIST): 1, import_url(): 7}
        assert EndUser.objects.count() == 3
        outcomes = AuditEvent.objects.filter(action="enduser.import").values_list(
            "outcome", flat=True
        )
        assert Counter(outcomes) == {"success": 1, "rejected": 7}
