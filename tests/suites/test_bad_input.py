"""Bad input suite: whatever is sent, no view answers 500, and nothing is written.

Hypothesis sends random keys and values to every query parameter and form of the console, the
audit pages, the bulk job pages and the admin (lists, change pages, actions and their
intermediate pages, the CSV import): over-long strings, control characters and NUL bytes,
Unicode look-alikes (a Cyrillic "а" in a slug), huge and negative numbers, malformed UUIDs,
impossible dates. Every request must answer below 500 and leave every table as it was, except
for the audit events the view is documented to write for rejected input or refused access:

- a refused console, audit or bulk view, custom admin view or posted admin action: exactly one
  `access.refused` event;
- a rejected toolkit choice on an admin action's intermediate page: exactly one
  `input.rejected` event;
- a rejected CSV import: exactly one `enduser.import` event with outcome `rejected`;
- a failed login: exactly one `auth.login_failed` event, plus django-axes' own attempt records.

Decided here: the `django_session` table is not watched (logging a test client in writes it,
and so may the staff session clock), nor is it content the console owns. Everything else is:
every table of every installed app, django-axes' and the task queue's included.

CSRF: every URL refuses a POST without a token (403) and writes nothing; the POST endpoints
answer as the access matrix says once the token is sent. GETs: every URL of the access matrix,
for every role, writes nothing but the `access.refused` event its matrix entry says it writes.

Crashes found in Django's own admin and login (not in the console's code) each have a test of
their own, which fails until they are fixed: a non-numeric `_selected_action`, an empty
`_to_field`, a NUL byte in an admin list filter and an over-long login username (the last two
on PostgreSQL only). The random walks skip exactly those inputs, so they do not fail now and
then for a cause already on record.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Max
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessions_app.models import AuditEvent, EndUser
from tests.access_matrix import POST_DATA, ROLES, ROWS, answer
from tests.factories import ALLOWED, HX, client_for
from tests.helpers import access_placeholders

pytestmark = pytest.mark.usefixtures("fast_passwords")

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# The page-by-page walks (27 pages, 15 paths) take fewer examples each, to keep the suite short.
FUZZ_PER_VIEW = settings(FUZZ, max_examples=20)

# --- Inputs ------------------------------------------------------------------------------------

LOOKALIKES = [
    "gіthub",  # Cyrillic i
    "gmаil",  # Cyrillic a
    "usr_аccess",
    "ｇｉｔｈｕｂ",  # full width
    "github\u200b",  # zero-width space
    "GITHUB",
    " github",
    "git hub",
    "ǵithub",
]
SPECIAL = [
    "",
    " ",
    "0",
    "-1",
    "-99999999999999999999",
    "99999999999999999999999",
    "9223372036854775808",
    "1e309",
    "NaN",
    "inf",
    "None",
    "null",
    "true",
    "[]",
    "{}",
    "%00",
    "\x00",
    "a\x00b",
    "\r\n",
    "\x1b[31m",
    "2026-02-31",
    "2026-13-01",
    "0000-00-00",
    "0001-01-01",
    "0001-01-05",
    "9999-12-31",
    "10000-01-01",
    "2026-02-28T25:00",
    "00000000-0000-0000-0000-000000000000",
    "not-a-uuid",
    "123e4567-e89b-12d3-a456-42661417400",
    "123e4567-e89b-12d3-a456-4266141740000",
    "'; DROP TABLE sessions_app_enduser;--",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "csv",
    "toolkits",
    "point_in_time",
    "yes",
    "no",
    "on",
    "1",
    "-id",
    "0.-1",
    "created_at__gte",
]
CONTROL = st.text(alphabet=st.characters(categories=["Cc"]), min_size=1, max_size=8)
LONG = st.builds(
    lambda c, n: c * n, st.sampled_from(["a", "а", "\x00", "9", "é"]), st.integers(200, 3000)
)
VALUES = st.one_of(
    st.sampled_from(SPECIAL + LOOKALIKES),
    st.text(max_size=40),
    CONTROL,
    LONG,
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.uuids().map(str),
    st.dates().map(str),
)


def query_strategy(known: Iterable[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    keys = st.one_of(st.sampled_from(sorted(known) or ["q"]), st.text(max_size=20))
    return st.lists(st.tuples(keys, VALUES), max_size=6)


# --- Watching every table ----------------------------------------------------------------------

WATCHED = [
    model
    for model in apps.get_models(include_auto_created=True)
    if model._meta.label_lower != "sessions.session"
]


def snapshot() -> dict[str, Counter]:
    """Every row of every watched table, as a multiset of its field values."""
    state: dict[str, Counter] = {}
    for model in WATCHED:
        names = [f.attname for f in model._meta.concrete_fields]
        rows = model._base_manager.order_by().values_list(*names)
        # repr: JSON fields come back as dicts and lists, which do not hash.
        state[model._meta.label_lower] = Counter(repr(row) for row in rows)
    return state


def last_sequence() -> int:
    return AuditEvent.objects.aggregate(top=Max("sequence"))["top"] or 0


class Watch:
    """Before a request: every table. After: what changed, and the audit events written."""

    def __init__(self) -> None:
        self.before = snapshot()
        self.sequence = last_sequence()

    def events(self) -> list[tuple[str, str]]:
        return list(
            AuditEvent.objects.filter(sequence__gt=self.sequence)
            .order_by("sequence")
            .values_list("action", "outcome")
        )

    def changed_tables(self, *, allowed: Iterable[str] = ()) -> list[str]:
        after = snapshot()
        skip = {"sessions_app.auditevent", *allowed}
        return sorted(k for k in self.before if k not in skip and self.before[k] != after[k])

    def assert_wrote(self, events: list[tuple[str, str]], *, allowed: Iterable[str] = ()) -> None:
        assert self.changed_tables(allowed=allowed) == []
        assert self.events() == events


def no_server_error(response: Any) -> Any:
    # Reading a streamed body (CSV exports) runs the code that writes it.
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)
    assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR, response.status_code
    return response


REFUSED = [("access.refused", "refused")]
REJECTED = [("input.rejected", "rejected")]


@pytest.fixture
def root_client(access_world: dict[str, Any]) -> Client:
    return client_for(access_world["users"]["superuser"])


def url(template: str, access_world: dict[str, Any]) -> str:
    return template.format(**access_placeholders(access_world))


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


@pytest.mark.django_db
@pytest.mark.parametrize("view", sorted(GET_VIEWS))
def test_random_query_strings_never_break_a_page_or_write_anything(
    view: str, access_world: dict[str, Any], root_client: Client, emulator: Any
) -> None:
    template, known = GET_VIEWS[view]
    target = url(template, access_world)

    @FUZZ_PER_VIEW
    @given(query=query_strategy(known), htmx=st.booleans())
    def check(query: list[tuple[str, str]], htmx: bool) -> None:
        watch = Watch()
        headers = HX if htmx else {}
        response = no_server_error(
            root_client.get(target + "?" + urlencode(query), headers=headers)
        )
        # A 403 (the admin's autocomplete refuses a malformed query) is audited, like every
        # refusal; anything else writes nothing.
        refused = response.status_code == HTTPStatus.FORBIDDEN
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


@pytest.mark.django_db
@pytest.mark.parametrize("template", PATH_VIEWS)
def test_random_ids_in_the_path_answer_404_or_a_redirect_and_write_nothing(
    template: str, root_client: Client, emulator: Any
) -> None:
    @FUZZ_PER_VIEW
    @given(segment=VALUES.filter(lambda v: v.strip() not in ("", ".", "..")))
    def check(segment: str) -> None:
        watch = Watch()
        target = template.replace("{}", quote(segment, safe=""))
        no_server_error(root_client.get(target))
        watch.assert_wrote([])

    check()


# --- POST: admin actions and their intermediate pages ------------------------------------------

SESSION_ACTIONS = ["create_sessions", "refresh_sessions", "change_session_toolkits"]


def toolkit_lists() -> st.SearchStrategy[list[str]]:
    """Toolkit choices that can never all be valid: empty, or with a bad slug among them."""
    slug = st.one_of(st.sampled_from(sorted(ALLOWED)), st.sampled_from(LOOKALIKES), VALUES)
    return st.lists(slug, max_size=30).filter(
        lambda ts: not ts or any(t not in ALLOWED for t in ts) or len(set(ts)) < len(ts)
    )


def bad_pks() -> st.SearchStrategy[list[str]]:
    """Numeric `_selected_action` values that name no object of ours.

    Non-numeric ones crash Django's own `response_action` (a 500):
    `test_a_non_numeric_selected_id_does_not_crash_an_admin_action` shows it on its own.
    """
    return st.lists(
        st.one_of(
            st.integers(min_value=-(2**63), max_value=0).map(str),
            st.integers(min_value=10**6, max_value=2**63 - 1).map(str),
        ),
        max_size=5,
    )


@pytest.mark.django_db
def test_a_crafted_toolkit_choice_writes_exactly_one_rejected_event_and_nothing_else(
    access_world: dict[str, Any], root_client: Client, emulator: Any
) -> None:
    watch = Watch()
    response = root_client.post(
        "/admin/sessions_app/enduser/",
        {
            "action": "refresh_sessions",
            "_selected_action": [access_world["ids"]["enduser"]],
            "post": "yes",
            "toolkits": ["github", "gіthub"],  # the second with a Cyrillic i
        },
    )
    assert response.status_code == HTTPStatus.OK
    assert b"errorlist" in response.content
    watch.assert_wrote(REJECTED)
    assert emulator.count("session.create") == 1  # the access access_world's own session only


@pytest.mark.django_db
def test_random_session_action_posts_never_break_and_write_at_most_the_rejection(
    access_world: dict[str, Any], root_client: Client, emulator: Any
) -> None:
    real = str(access_world["ids"]["enduser"])
    creates = emulator.count("session.create")

    @FUZZ
    @given(
        action=st.one_of(st.sampled_from(SESSION_ACTIONS), VALUES),
        selected=st.one_of(st.just([real]), bad_pks().map(lambda pks: [real, *pks])),
        post=st.one_of(st.just("yes"), VALUES),
        toolkits=toolkit_lists(),
        extra=query_strategy({"index", "select_across", "keep_current"}).map(
            lambda pairs: [(k, v) for k, v in pairs if k not in ("keep_current", "select_across")]
        ),
    )
    def check(action: str, selected: list[str], post: str, toolkits: list[str], extra) -> None:
        watch = Watch()
        data: dict[str, Any] = dict(extra)
        data.update(action=action, _selected_action=selected, post=post, toolkits=toolkits)
        response = no_server_error(root_client.post("/admin/sessions_app/enduser/", data))
        form_error = response.status_code == HTTPStatus.OK and b"errorlist" in response.content
        rejected = action in SESSION_ACTIONS and post == "yes"
        watch.assert_wrote(REJECTED if rejected and form_error else [])
        assert not rejected or form_error, "a choice with a bad toolkit was accepted"

    check()
    assert emulator.count("session.create") == creates


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changelist", "actions"),
    [
        ("/admin/sessions_app/enduser/", SESSION_ACTIONS + ["delete_sessions"]),
        ("/admin/sessions_app/toolkit/", ["allow_toolkits", "disallow_toolkits"]),
        ("/admin/sessions_app/toolroutersession/", ["retry_remote_deletes"]),
        ("/admin/auth/user/", ["delete_selected"]),
    ],
)
def test_selections_naming_no_object_are_refused_cleanly(
    changelist: str, actions: list[str], root_client: Client, emulator: Any
) -> None:
    @FUZZ
    @given(action=st.sampled_from(actions), selected=bad_pks())
    def check(action: str, selected: list[str]) -> None:
        watch = Watch()
        data = {"action": action, "_selected_action": selected, "index": "0"}
        no_server_error(root_client.post(changelist, data))
        watch.assert_wrote([])

    check()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changelist", "action"),
    [
        ("/admin/sessions_app/enduser/", "create_sessions"),
        ("/admin/sessions_app/toolkit/", "allow_toolkits"),
        ("/admin/sessions_app/toolroutersession/", "retry_remote_deletes"),
        ("/admin/auth/user/", "delete_selected"),
    ],
)
def test_a_non_numeric_selected_id_does_not_crash_an_admin_action(
    changelist: str, action: str, root_client: Client, emulator: Any
) -> None:
    # Found by this suite: Django's `response_action` filters `pk__in` with the raw posted
    # values, and a non-numeric one raises ValueError (a 500).
    watch = Watch()
    for value in ("abc", "", "1.5", "１"):
        data = {"action": action, "_selected_action": value}
        no_server_error(root_client.post(changelist, data))
    watch.assert_wrote([])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "template",
    [
        "/admin/sessions_app/enduser/{enduser}/change/?_to_field=",
        "/admin/auth/user/{user}/change/?_to_field=",
    ],
)
def test_an_empty_to_field_on_an_admin_change_page_is_not_a_server_error(
    template: str, access_world: dict[str, Any], root_client: Client, emulator: Any
) -> None:
    # Found by this suite: Django's change_view looks up the field named "" (KeyError, a 500).
    no_server_error(root_client.get(url(template, access_world)))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/admin/sessions_app/auditevent/?action__exact=a%00b",
        "/admin/sessions_app/bulkjob/?kind__exact=%00",
        "/admin/auth/user/?username__exact=a%00b",
    ],
)
def test_a_nul_byte_in_an_admin_list_filter_is_not_a_server_error(
    path: str, root_client: Client, emulator: Any
) -> None:
    # Found by this suite, on PostgreSQL only: the admin passes the value to the database, which
    # refuses NUL bytes (DataError, a 500). SQLite simply finds nothing.
    watch = Watch()
    no_server_error(root_client.get(path))
    watch.assert_wrote([])


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


@pytest.mark.django_db
def test_adding_an_end_user_with_a_bad_external_id_writes_nothing(
    root_client: Client, emulator: Any
) -> None:
    @FUZZ
    @given(external_id=BAD_EXTERNAL_IDS, display_name=VALUES, email=VALUES)
    def check(external_id: str, display_name: str, email: str) -> None:
        watch = Watch()
        data = {"external_id": external_id, "display_name": display_name, "email": email}
        response = no_server_error(root_client.post("/admin/sessions_app/enduser/add/", data))
        assert response.status_code == HTTPStatus.OK
        watch.assert_wrote([])

    check()


@pytest.mark.django_db
def test_editing_an_end_user_with_bad_values_writes_nothing(
    access_world: dict[str, Any], root_client: Client, emulator: Any
) -> None:
    target = url("/admin/sessions_app/enduser/{enduser}/change/", access_world)

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


@pytest.mark.django_db
def test_random_csv_uploads_preview_or_refuse_and_write_at_most_the_rejection(
    root_client: Client, emulator: Any
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


@pytest.mark.django_db
def test_a_confirmed_import_of_random_text_is_refused_with_one_rejected_event(
    root_client: Client, emulator: Any
) -> None:
    users = EndUser.objects.count()

    @FUZZ
    @given(text=st.one_of(st.text(max_size=500), LONG, CONTROL))
    def check(text: str) -> None:
        watch = Watch()
        data = {"post": "yes", "csv_text": text}
        no_server_error(root_client.post("/admin/sessions_app/enduser/import/", data))
        watch.assert_wrote([("enduser.import", "rejected")])

    check()
    assert EndUser.objects.count() == users


@pytest.mark.django_db
def test_random_login_attempts_write_one_failed_login_and_axes_records_only(
    access_world: dict[str, Any], emulator: Any
) -> None:
    axes_tables = ["axes.accessattempt", "axes.accessfailurelog", "axes.accesslog"]

    @FUZZ
    @given(username=VALUES, password=VALUES, next_url=VALUES)
    def check(username: str, password: str, next_url: str) -> None:
        watch = Watch()
        data = {"username": username, "password": password, "next": next_url}
        response = no_server_error(Client().post("/accounts/login/", data))
        assert response.status_code != HTTPStatus.FOUND  # nobody got in
        assert watch.events() in ([], [("auth.login_failed", "failure")])
        watch.assert_wrote(watch.events(), allowed=axes_tables)

    check()


@pytest.mark.django_db
def test_an_over_long_username_at_login_is_refused_not_a_server_error(emulator: Any) -> None:
    # Found by this suite, on PostgreSQL only: Django's AuthenticationForm does not enforce the
    # username's length, so authenticate() runs and django-axes stores the attempt in a
    # varchar(255) (DataError, a 500).
    data = {"username": "a" * 256, "password": "wrong"}
    response = no_server_error(Client().post("/accounts/login/", data))
    assert response.status_code != HTTPStatus.FOUND


# --- POST: ids in the path of console actions --------------------------------------------------


@pytest.mark.django_db
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
    template: str, root_client: Client, emulator: Any
) -> None:
    @FUZZ
    @given(segment=st.one_of(st.uuids().map(str), VALUES))
    def check(segment: str) -> None:
        watch = Watch()
        response = root_client.post(template.replace("{}", quote(segment, safe="")))
        assert no_server_error(response).status_code == HTTPStatus.NOT_FOUND
        watch.assert_wrote([])

    check()


# --- Impossible dates, found by this suite -----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/audit/events/", "date_to=9999-12-31"),
        ("/audit/events/", "date_from=9999-12-31"),
        ("/audit/events/", "date_from=0001-01-01&date_to=0001-01-01"),
        ("/audit/events/", "date_from=1899-12-31"),
        ("/audit/access/", "granted_to=9999-12-31"),
        ("/audit/access/", "granted_from=0001-01-01&granted_to=0001-01-05"),
        ("/audit/access/", "toolkit=github&on=9999-12-31"),
        ("/audit/access/", "toolkit=github&on=0001-01-01"),
    ],
)
def test_the_audit_log_and_the_access_report_explain_dates_they_cannot_use(
    path: str, query: str, root_client: Client, emulator: Any
) -> None:
    watch = Watch()
    response = no_server_error(root_client.get(path + "?" + query))
    assert b"Choose a date between 1900-01-01 and 9999-12-30." in response.content
    watch.assert_wrote([])


@pytest.mark.django_db
def test_a_nul_byte_in_a_support_search_gets_a_message_not_an_error(
    root_client: Client, emulator: Any
) -> None:
    response = no_server_error(root_client.get("/support/?q=usr%00access"))
    assert response.status_code == HTTPStatus.OK
    assert b"contains a NUL character" in response.content


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
            url(row.url, access_world), {"action": "allow_toolkits", "post": "yes"}
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
        client.get("/accounts/login/")  # sets the csrftoken cookie
        token = client.cookies["csrftoken"].value
        values = access_placeholders(access_world)
        data = {k: v.format(**values) for k, v in POST_DATA.get(row.route, {}).items()}
        response = client.post(row.url.format(**values), data, headers={"X-CSRFToken": token})
        if answer(response) != row.expected["superuser"]:
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
        no_server_error(client.get(url(row.url, access_world)))
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
