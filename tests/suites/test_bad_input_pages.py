"""Bad input on the pages: random query strings on every page, random ids in every path, and the
impossible dates and NUL bytes this suite found. No GET answers 500 or writes anything but the
refusal its view audits (tests/bad_input.py: `Watch`); an admin list audits the lookup it refuses.

Two crashes found in Django's own admin (not in the console's code) each have a test of their
own, which fails until they are fixed: an empty `_to_field` and a NUL byte in an admin list filter
(the second on PostgreSQL only).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from tests.access_matrix import access_url
from tests.bad_input import (
    FUZZ_PER_VIEW,
    REFUSED,
    VALUES,
    Watch,
    harmless,
    no_server_error,
    query_strategy,
)
from tests.factories import HX

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords", "emulator")]

# --- GET: random query strings on every page ---------------------------------------------------

GET_VIEWS: dict[str, tuple[str, set[str]]] = {
    "support lookup": ("/support/", {"q"}),
    "support card": ("/support/users/{end_user_uuid}/", {"q"}),
    "support row": ("/support/users/{end_user_uuid}/row/", set()),
    "support refresh confirm": ("/support/users/{end_user_uuid}/refresh/", set()),
    "support connections": ("/support/sessions/{session_uuid}/connections/", set()),
    "audit log": (
        "/audit/events/",
        {
            "action",
            "outcome",
            "actor",
            "end_user",
            "toolkit",
            "date_from",
            "date_to",
            "before",
            "export",
        },
    ),
    "access report": (
        "/audit/access/",
        {"allowed", "not_in_catalog", "granted_from", "granted_to", "toolkit", "on", "export"},
    ),
    "access by user": ("/audit/access/users/", {"page", "export"}),
    "access by toolkit": ("/audit/access/toolkits/github/", {"page", "export"}),
    "bulk jobs": ("/jobs/", {"page"}),
    "bulk job": ("/jobs/{job_uuid}/", {"state", "page"}),
    "bulk job progress": ("/jobs/{job_uuid}/progress/", {"state"}),
    "bulk job failures": ("/jobs/{job_uuid}/failures.csv", set()),
    "admin end users": (
        "/admin/sessions_app/enduser/",
        {
            "q",
            "o",
            "p",
            "has_session",
            "toolkit",
            "created_at__gte",
            "created_at__lt",
            "e",
            "all",
            "_to_field",
            "_popup",
        },
    ),
    "admin end user": (
        "/admin/sessions_app/enduser/{enduser}/change/",
        {"_changelist_filters", "_to_field", "_popup"},
    ),
    "admin sessions": (
        "/admin/sessions_app/toolroutersession/",
        {"q", "o", "p", "status__exact", "toolkit", "remote_delete", "created_at__gte"},
    ),
    "admin session": (
        "/admin/sessions_app/toolroutersession/{toolroutersession}/change/",
        {"_changelist_filters"},
    ),
    "admin toolkits": (
        "/admin/sessions_app/toolkit/",
        {"q", "o", "p", "is_allowed__exact", "in_catalog__exact", "used"},
    ),
    "admin intents": (
        "/admin/sessions_app/sessionoperation/",
        {"q", "o", "p", "state__exact", "kind__exact", "created_at__gte"},
    ),
    "admin audit events": (
        "/admin/sessions_app/auditevent/",
        {"q", "o", "p", "action__exact", "outcome__exact", "created_at__gte", "created_at__lt"},
    ),
    "admin bulk jobs": (
        "/admin/sessions_app/bulkjob/",
        {"q", "o", "p", "state__exact", "kind__exact"},
    ),
    "admin bulk job": ("/admin/sessions_app/bulkjob/{bulkjob}/change/", {"state", "page"}),
    "admin import": ("/admin/sessions_app/enduser/import/", set()),
    "admin autocomplete": (
        "/admin/autocomplete/",
        {"term", "app_label", "model_name", "field_name", "page"},
    ),
    "admin users": ("/admin/auth/user/", {"q", "o", "p", "is_staff__exact", "groups__id__exact"}),
    "login page": ("/accounts/login/", {"next"}),
    "health": ("/healthz", set()),
}


# The admin lists: each refuses, with a 400 and one `access.refused` event, a lookup its filters
# do not offer (tests/admin/test_lookup_guard.py).
ADMIN_LISTS = {
    "admin end users",
    "admin sessions",
    "admin toolkits",
    "admin intents",
    "admin audit events",
    "admin bulk jobs",
    "admin users",
}


def refuses_lookups(view: str, query: list[tuple[str, str]]) -> bool:
    """Whether a 400 from `view` for `query` is an admin list's refusal: not the one the
    malformed-input middleware answers first (unaudited) for a NUL byte or an empty `_to_field`."""
    nul = any("\x00" in key or "\x00" in value for key, value in query)
    return view in ADMIN_LISTS and not nul and dict(query).get("_to_field") != ""


@pytest.mark.parametrize("view", sorted(GET_VIEWS))
def test_random_query_strings_never_break_a_page_or_write_anything(
    view: str, access_world: dict[str, Any], root_client: Client
) -> None:
    template, known = GET_VIEWS[view]
    target = access_url(template, access_world)

    @FUZZ_PER_VIEW
    @given(query=query_strategy(known), htmx=st.booleans())
    def check(query: list[tuple[str, str]], htmx: bool) -> None:
        watch = Watch()
        headers = HX if htmx else {}
        response = no_server_error(
            root_client.get(target + "?" + urlencode(query), headers=headers)
        )
        # A 403 (the admin's autocomplete refuses a malformed query) is audited, like every
        # refusal, and so is an admin list's 400 for a lookup (or `_to_field`) it does not offer;
        # anything else writes nothing.
        refused = response.status_code == HTTPStatus.FORBIDDEN or (
            response.status_code == HTTPStatus.BAD_REQUEST and refuses_lookups(view, query)
        )
        watch.assert_wrote(REFUSED if refused else [])

    check()


# --- GET: random path segments -----------------------------------------------------------------

PATH_VIEWS = [
    "/support/users/{}/",
    "/support/users/{}/row/",
    "/support/users/{}/refresh/",
    "/support/sessions/{}/connections/",
    "/jobs/{}/",
    "/jobs/{}/failures.csv",
    "/audit/access/toolkits/{}/",
    "/admin/sessions_app/enduser/{}/change/",
    "/admin/sessions_app/enduser/{}/history/",
    "/admin/sessions_app/toolroutersession/{}/change/",
    "/admin/sessions_app/toolkit/{}/change/",
    "/admin/sessions_app/sessionoperation/{}/change/",
    "/admin/sessions_app/auditevent/{}/change/",
    "/admin/sessions_app/bulkjob/{}/change/",
    "/admin/r/{}/{}/",
]


@pytest.mark.parametrize("template", PATH_VIEWS)
def test_random_ids_in_the_path_answer_404_or_a_redirect_and_write_nothing(
    template: str, root_client: Client
) -> None:
    @FUZZ_PER_VIEW
    @given(segment=VALUES.filter(lambda v: v.strip() not in ("", ".", "..")))
    def check(segment: str) -> None:
        harmless(root_client.get, template.replace("{}", quote(segment, safe="")))

    check()


# --- Django's own admin: crashes found by this suite --------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "/admin/sessions_app/enduser/{enduser}/change/?_to_field=",
        "/admin/auth/user/{user}/change/?_to_field=",
    ],
)
def test_an_empty_to_field_on_an_admin_change_page_is_not_a_server_error(
    template: str, access_world: dict[str, Any], root_client: Client
) -> None:
    # Found by this suite: Django's change_view looks up the field named "" (KeyError, a 500).
    no_server_error(root_client.get(access_url(template, access_world)))


@pytest.mark.parametrize(
    "path",
    [
        "/admin/sessions_app/auditevent/?action__exact=a%00b",
        "/admin/sessions_app/bulkjob/?kind__exact=%00",
        "/admin/auth/user/?username__exact=a%00b",
    ],
)
def test_a_nul_byte_in_an_admin_list_filter_is_not_a_server_error(
    path: str, root_client: Client
) -> None:
    # Found by this suite, on PostgreSQL only: the admin passes the value to the database, which
    # refuses NUL bytes (DataError, a 500). SQLite simply finds nothing.
    harmless(root_client.get, path)


# --- Impossible dates, found by this suite -----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/audit/events/?date_to=9999-12-31",
        "/audit/events/?date_from=9999-12-31",
        "/audit/events/?date_from=0001-01-01&date_to=0001-01-01",
        "/audit/events/?date_from=1899-12-31",
        "/audit/access/?granted_to=9999-12-31",
        "/audit/access/?granted_from=0001-01-01&granted_to=0001-01-05",
        "/audit/access/?toolkit=github&on=9999-12-31",
        "/audit/access/?toolkit=github&on=0001-01-01",
    ],
)
def test_the_audit_log_and_the_access_report_explain_dates_they_cannot_use(
    url: str, root_client: Client
) -> None:
    response = harmless(root_client.get, url)
    assert b"Choose a date between 1900-01-01 and 9999-12-30." in response.content


def test_a_nul_byte_in_a_support_search_gets_a_message_not_an_error(root_client: Client) -> None:
    response = no_server_error(root_client.get("/support/?q=usr%00access"))
    assert response.status_code == HTTPStatus.OK
    assert b"contains a NUL character" in response.content
