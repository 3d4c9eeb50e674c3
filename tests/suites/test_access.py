"""Access suite: every URL in the resolver, for every role, answers as the one matrix below says.

The matrix is the decision record of who may open what. A URL the resolver serves that the
matrix does not list fails `test_the_matrix_lists_every_url_the_project_serves`, so a new view
cannot slip in without someone deciding (and writing down) who may use it. The same table is in
docs/access-matrix.md; `test_the_access_matrix_document_matches_the_table` keeps them equal
(`UPDATE_ACCESS_MATRIX=1 pytest tests/suites/test_access.py -k document` rewrites the document).

Answers, per role:
- `200`, `403`, `404`, `405`: that status code;
- `login`: a redirect to the console's login page (/accounts/login/);
- `admin login`: a redirect to the admin's login page (/admin/login/);
- `302`: any other redirect (after a POST, the admin's "/<id>/" -> "/<id>/change/", a refused
  admin action sent back to its list, ...);
- a trailing ` audited`: the answer also wrote an `access.refused` audit event. Every 403 is
  audited: the console's refusals, refused admin actions, and Django's own admin 403s, which
  reach the console's refusal page through `handler403` (`sessions_app.access.refused_view`).

Objects are real (the `access_world` fixture in conftest.py): an end user with a session made
through the services against the emulator, its toolkit, intent and audit events, a group, a
user, axes records and a task result, so that detail URLs answer 200 to whoever may see them.
A made-up object id is used only where the project has no object to point at (the admin's "view
on site" of a model without a site URL).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from sessions_app.models import AuditEvent
from tests.factories import PROJECT_ROOT, client_for
from tests.helpers import access_placeholders

DOC = PROJECT_ROOT / "docs" / "access-matrix.md"
ROLES = ("anonymous", "support", "session admin", "auditor", "no role", "superuser")

pytestmark = pytest.mark.usefixtures("fast_passwords")

# --- The matrix ---------------------------------------------------------------------------------
#
# (route as the resolver spells it, method, expected answer per role in the order of ROLES). The
# URL requested is the route with each parameter replaced by a real object (`url_of`); a route
# may have several rows (GET and POST). A POST to an admin list posts the action in POST_DATA.

A = "admin login"
L = "login"
OK = "200"
NOA = "403 audited"
R = "302"
RA = "302 audited"
NF = "404"
NA = "405"

# fmt: off
MATRIX: list[tuple[str, str, tuple[str, str, str, str, str, str]]] = [
    # route, method,  (anonymous, support, session admin, auditor, no role, superuser)
    ("", "GET", (L, R, R, R, R, R)),
    ("healthz", "GET", (OK, OK, OK, OK, OK, OK)),
    ("accounts/login/", "GET", (OK, OK, OK, OK, OK, OK)),
    ("accounts/logout/", "GET", (L, NA, NA, NA, NA, NA)),
    ("accounts/logout/", "POST", (L, L, L, L, L, L)),
    ("admin/", "GET", (A, OK, OK, OK, OK, OK)),
    ("admin/login/", "GET", (OK, R, R, R, R, R)),
    ("admin/logout/", "GET", (A, NA, NA, NA, NA, NA)),
    ("admin/logout/", "POST", (A, L, L, L, L, L)),
    ("admin/password_change/", "GET", (A, OK, OK, OK, OK, OK)),
    ("admin/password_change/done/", "GET", (A, OK, OK, OK, OK, OK)),
    ("admin/autocomplete/", "GET", (A, NOA, NOA, NOA, NOA, NOA)),
    ("admin/jsi18n/", "GET", (A, OK, OK, OK, OK, OK)),
    ("admin/r/<path:content_type_id>/<path:object_id>/", "GET", (A, NF, NF, NF, NF, NF)),
    ("admin/auth/group/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/auth/group/add/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/auth/group/<path:object_id>/history/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/auth/group/<path:object_id>/delete/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/auth/group/<path:object_id>/change/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/auth/group/<path:object_id>/", "GET", (L, R, R, R, R, R)),
    ("admin/auth/user/<id>/password/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/auth/user/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/auth/user/add/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/auth/user/<path:object_id>/history/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/auth/user/<path:object_id>/delete/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/auth/user/<path:object_id>/change/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/auth/user/<path:object_id>/", "GET", (L, R, R, R, R, R)),
    ("admin/axes/accessattempt/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/axes/accessattempt/add/", "GET", (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/axes/accessattempt/<path:object_id>/history/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/axes/accessattempt/<path:object_id>/delete/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/axes/accessattempt/<path:object_id>/change/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/axes/accessattempt/<path:object_id>/", "GET", (L, R, R, R, R, R)),
    ("admin/axes/accesslog/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/axes/accesslog/add/", "GET", (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/axes/accesslog/<path:object_id>/history/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/axes/accesslog/<path:object_id>/delete/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/axes/accesslog/<path:object_id>/change/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/axes/accesslog/<path:object_id>/", "GET", (L, R, R, R, R, R)),
    ("admin/axes/accessfailurelog/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/axes/accessfailurelog/add/", "GET", (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/axes/accessfailurelog/<path:object_id>/history/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/axes/accessfailurelog/<path:object_id>/delete/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/axes/accessfailurelog/<path:object_id>/change/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/axes/accessfailurelog/<path:object_id>/", "GET", (L, R, R, R, R, R)),
    ("admin/django_tasks_database/dbtaskresult/", "GET", (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/django_tasks_database/dbtaskresult/add/", "GET", (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/django_tasks_database/dbtaskresult/<path:object_id>/history/", "GET",
        (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/django_tasks_database/dbtaskresult/<path:object_id>/delete/", "GET",
        (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/django_tasks_database/dbtaskresult/<path:object_id>/change/", "GET",
        (L, NOA, NOA, NOA, NOA, OK)),
    ("admin/django_tasks_database/dbtaskresult/<path:object_id>/", "GET", (L, R, R, R, R, R)),
    ("admin/sessions_app/enduser/import/", "GET", (L, NOA, OK, NOA, NOA, OK)),
    ("admin/sessions_app/enduser/import/", "POST", (L, NOA, OK, NOA, NOA, OK)),
    ("admin/sessions_app/enduser/", "GET", (L, OK, OK, OK, NOA, OK)),
    ("admin/sessions_app/enduser/add/", "GET", (L, NOA, OK, NOA, NOA, OK)),
    ("admin/sessions_app/enduser/<path:object_id>/history/", "GET", (L, OK, OK, OK, NOA, OK)),
    ("admin/sessions_app/enduser/<path:object_id>/delete/", "GET", (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/sessions_app/enduser/<path:object_id>/change/", "GET", (L, OK, OK, OK, NOA, OK)),
    ("admin/sessions_app/enduser/<path:object_id>/", "GET", (L, R, R, R, R, R)),
    ("admin/sessions_app/enduser/", "POST", (L, RA, OK, RA, RA, OK)),
    ("admin/sessions_app/toolroutersession/", "GET", (L, OK, OK, OK, NOA, OK)),
    ("admin/sessions_app/toolroutersession/add/", "GET", (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/sessions_app/toolroutersession/<path:object_id>/history/", "GET",
        (L, OK, OK, OK, NOA, OK)),
    ("admin/sessions_app/toolroutersession/<path:object_id>/delete/", "GET",
        (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/sessions_app/toolroutersession/<path:object_id>/change/", "GET",
        (L, OK, OK, OK, NOA, OK)),
    ("admin/sessions_app/toolroutersession/<path:object_id>/", "GET", (L, R, R, R, R, R)),
    ("admin/sessions_app/toolroutersession/", "POST", (L, RA, R, RA, RA, R)),
    ("admin/sessions_app/toolkit/sync/", "GET", (L, NA, NA, NA, NA, NA)),
    ("admin/sessions_app/toolkit/sync/", "POST", (L, NOA, R, NOA, NOA, R)),
    ("admin/sessions_app/toolkit/", "GET", (L, OK, OK, OK, NOA, OK)),
    ("admin/sessions_app/toolkit/add/", "GET", (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/sessions_app/toolkit/<path:object_id>/history/", "GET", (L, OK, OK, OK, NOA, OK)),
    ("admin/sessions_app/toolkit/<path:object_id>/delete/", "GET", (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/sessions_app/toolkit/<path:object_id>/change/", "GET", (L, OK, OK, OK, NOA, OK)),
    ("admin/sessions_app/toolkit/<path:object_id>/", "GET", (L, R, R, R, R, R)),
    ("admin/sessions_app/toolkit/", "POST", (L, RA, R, RA, RA, R)),
    ("admin/sessions_app/bulkjob/", "GET", (L, NOA, OK, NOA, NOA, OK)),
    ("admin/sessions_app/bulkjob/add/", "GET", (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/sessions_app/bulkjob/<path:object_id>/history/", "GET", (L, NOA, OK, NOA, NOA, OK)),
    ("admin/sessions_app/bulkjob/<path:object_id>/delete/", "GET", (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/sessions_app/bulkjob/<path:object_id>/change/", "GET", (L, NOA, OK, NOA, NOA, OK)),
    ("admin/sessions_app/bulkjob/<path:object_id>/", "GET", (L, R, R, R, R, R)),
    ("admin/sessions_app/sessionoperation/", "GET", (L, NOA, OK, NOA, NOA, OK)),
    ("admin/sessions_app/sessionoperation/add/", "GET", (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/sessions_app/sessionoperation/<path:object_id>/history/", "GET",
        (L, NOA, OK, NOA, NOA, OK)),
    ("admin/sessions_app/sessionoperation/<path:object_id>/delete/", "GET",
        (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/sessions_app/sessionoperation/<path:object_id>/change/", "GET",
        (L, NOA, OK, NOA, NOA, OK)),
    ("admin/sessions_app/sessionoperation/<path:object_id>/", "GET", (L, R, R, R, R, R)),
    ("admin/sessions_app/auditevent/", "GET", (L, NOA, NOA, OK, NOA, OK)),
    ("admin/sessions_app/auditevent/add/", "GET", (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/sessions_app/auditevent/<path:object_id>/history/", "GET", (L, NOA, NOA, OK, NOA, OK)),
    ("admin/sessions_app/auditevent/<path:object_id>/delete/", "GET", (L, NOA, NOA, NOA, NOA, NOA)),
    ("admin/sessions_app/auditevent/<path:object_id>/change/", "GET", (L, NOA, NOA, OK, NOA, OK)),
    ("admin/sessions_app/auditevent/<path:object_id>/", "GET", (L, R, R, R, R, R)),
    ("admin/^(?P<app_label>auth|axes|django_tasks_database|sessions_app)/$", "GET",
        (A, OK, OK, OK, NF, OK)),
    ("admin/(?P<url>.*)$", "GET", (A, NF, NF, NF, NF, NF)),
    ("jobs/", "GET", (L, NOA, OK, NOA, NOA, OK)),
    ("jobs/<uuid:public_id>/", "GET", (L, NOA, OK, NOA, NOA, OK)),
    ("jobs/<uuid:public_id>/progress/", "GET", (L, NOA, R, NOA, NOA, R)),
    ("jobs/<uuid:public_id>/failures.csv", "GET", (L, NOA, OK, NOA, NOA, OK)),
    ("jobs/<uuid:public_id>/cancel/", "GET", (L, NA, NA, NA, NA, NA)),
    ("jobs/<uuid:public_id>/cancel/", "POST", (L, NOA, R, NOA, NOA, R)),
    ("jobs/<uuid:public_id>/retry/", "GET", (L, NA, NA, NA, NA, NA)),
    ("jobs/<uuid:public_id>/retry/", "POST", (L, NOA, R, NOA, NOA, R)),
    ("audit/", "GET", (L, NOA, NOA, OK, NOA, OK)),
    ("audit/events/", "GET", (L, NOA, NOA, OK, NOA, OK)),
    ("audit/access/", "GET", (L, NOA, NOA, OK, NOA, OK)),
    ("audit/access/users/", "GET", (L, NOA, NOA, OK, NOA, OK)),
    ("audit/access/toolkits/<slug:slug>/", "GET", (L, NOA, NOA, OK, NOA, OK)),
    ("support/", "GET", (L, OK, OK, NOA, NOA, OK)),
    ("support/users/<uuid:public_id>/", "GET", (L, OK, OK, NOA, NOA, OK)),
    ("support/users/<uuid:public_id>/row/", "GET", (L, R, R, NOA, NOA, R)),
    ("support/sessions/<uuid:public_id>/reveal/", "GET", (L, NA, NA, NA, NA, NA)),
    ("support/sessions/<uuid:public_id>/reveal/", "POST", (L, OK, OK, NOA, NOA, OK)),
    ("support/sessions/<uuid:public_id>/connections/", "GET", (L, OK, OK, NOA, NOA, OK)),
    ("support/users/<uuid:public_id>/refresh/", "GET", (L, NOA, OK, NOA, NOA, OK)),
    ("support/users/<uuid:public_id>/refresh/", "POST", (L, NOA, R, NOA, NOA, R)),
]
# fmt: on

# Routes whose URL cannot be spelled from the route alone.
URL_OVERRIDES = {
    "": "/",
    "admin/r/<path:content_type_id>/<path:object_id>/": "/admin/r/{enduser_ct}/{enduser}/",
    "admin/^(?P<app_label>auth|axes|django_tasks_database|sessions_app)/$": "/admin/sessions_app/",
    "admin/(?P<url>.*)$": "/admin/no-such-page/",
}
_PARAMETERS = [
    (re.compile(r"([a-z_]+)/<path:object_id>/"), r"\1/{\1}/"),
    (re.compile(r"<id>"), "{user}"),
    (re.compile(r"^support/users/<uuid:public_id>/"), "support/users/{end_user_uuid}/"),
    (re.compile(r"^support/sessions/<uuid:public_id>/"), "support/sessions/{session_uuid}/"),
    (re.compile(r"^jobs/<uuid:public_id>/"), "jobs/{job_uuid}/"),
    (re.compile(r"<slug:slug>"), "{toolkit_slug}"),
]

# What a POST row sends: admin actions name their action and the selected object.
POST_DATA: dict[str, dict[str, str]] = {
    "admin/sessions_app/enduser/": {"action": "create_sessions", "_selected_action": "{enduser}"},
    "admin/sessions_app/toolroutersession/": {
        "action": "retry_remote_deletes",
        "_selected_action": "{toolroutersession}",
    },
    "admin/sessions_app/toolkit/": {"action": "allow_toolkits", "_selected_action": "{toolkit}"},
}


def url_of(route: str) -> str:
    if route in URL_OVERRIDES:
        return URL_OVERRIDES[route]
    for pattern, replacement in _PARAMETERS:
        route = pattern.sub(replacement, route)
    return "/" + route


@dataclass(frozen=True)
class Row:
    route: str
    method: str
    expected: dict[str, str] = field(hash=False)

    @property
    def url(self) -> str:
        return url_of(self.route)


ROWS = [Row(r, m, dict(zip(ROLES, e, strict=True))) for r, m, e in MATRIX]


# --- Walking the resolver -----------------------------------------------------------------------


def resolver_routes(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[str]:
    """Every route the project serves, the admin's included, as prefix + pattern text."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from resolver_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def answer(response: Any) -> str:
    if response.status_code in (HTTPStatus.FOUND, HTTPStatus.MOVED_PERMANENTLY):
        location = response["Location"]
        if location.startswith("/accounts/login/"):
            return L
        if location.startswith("/admin/login/"):
            return A
        return "302"
    return str(response.status_code)


def request_row(row: Row, client: Client, access_world: dict[str, Any]) -> str:
    """The answer to one row, with " audited" when it wrote an `access.refused` event."""
    values = access_placeholders(access_world)
    url = row.url.format(**values)
    refusals = AuditEvent.objects.filter(action="access.refused").count()
    if row.method == "GET":
        response = client.get(url)
    else:
        data = {k: str(v).format(**values) for k, v in POST_DATA.get(row.route, {}).items()}
        response = client.post(url, data)
    audited = AuditEvent.objects.filter(action="access.refused").count() > refusals
    return answer(response) + (" audited" if audited else "")


# --- The tests ----------------------------------------------------------------------------------


def test_the_matrix_lists_every_url_the_project_serves() -> None:
    served = set(resolver_routes())
    listed = {row.route for row in ROWS}
    assert sorted(served - listed) == [], "URLs served but missing from MATRIX: decide who may"
    assert sorted(listed - served) == [], "MATRIX rows for URLs the project no longer serves"
    assert len({(row.route, row.method) for row in ROWS}) == len(ROWS), "a row is listed twice"


def test_every_row_names_a_url_of_its_route() -> None:
    from django.urls import resolve

    placeholder = re.compile(r"\{[a-z_]+\}")
    for row in ROWS:
        url = placeholder.sub(
            lambda m: "00000000-0000-0000-0000-000000000000" if "uuid" in m[0] else "1", row.url
        )
        match = resolve(url)
        assert match.route == row.route.replace("^", ""), (row.route, match.route)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_the_answer_the_matrix_gives_for_every_url(
    role: str, access_world: dict[str, Any]
) -> None:
    user = access_world["users"][role]
    client = client_for(user)
    wrong = []
    for row in ROWS:
        got = request_row(row, client, access_world)
        if user is not None and "_auth_user_id" not in client.session:
            client = client_for(user)  # the row logged the client out
        if got != row.expected[role]:
            wrong.append(
                f"{row.method} {row.url} ({row.route!r}): expected "
                f"{row.expected[role]!r}, got {got!r}"
            )
    assert wrong == [], f"{role}:\n" + "\n".join(wrong)


# --- The document -------------------------------------------------------------------------------

DOC_INTRO = """# Access matrix

Who gets what from every URL the console serves: the Django admin, the support console, the audit
pages, the bulk jobs, login and health. It is generated from the table in
`tests/suites/test_access.py` (`UPDATE_ACCESS_MATRIX=1 pytest tests/suites/test_access.py -k
document`); a test fails when the two differ, and another when the project serves a URL the
table does not list.

Roles: **anonymous** (not logged in), **support** (group Support), **session admin** (group
Session admin), **auditor** (group Auditor), **no role** (a staff user in no group), **superuser**.

Answers: `200`, `403`, `404`, `405` are status codes; `login` is a redirect to the console's login
page (`/accounts/login/`), `admin login` a redirect to the admin's login page (`/admin/login/`),
`302` any other redirect (after a POST, the admin's `<id>/` to `<id>/change/`, a refused admin
action sent back to its list). A trailing **audited** means the answer also wrote an
`access.refused` audit event: every 403 is audited, Django's own admin 403s included (they reach
the console's refusal page through `handler403`).
`{...}` in a URL is a real object: an end user with an active session, its toolkit, intent and
audit events, a group, a staff user, axes records, a task result. POST rows to an admin list post
the named action for that object.

Two things the table shows that are easy to miss:

- Anonymous visitors to an admin *model* page are sent to the console's login page, not the
  admin's: `LoginRequiredMiddleware` answers before the admin's own check does (the admin index,
  app index, password and logout pages are marked login-not-required, so the admin sends those to
  `/admin/login/`). Either login page brings the user back (`?next=`).
- The reveal URL answers 405 to a GET whoever asks (the method check runs before the permission
  check), so a GET never reveals and never writes.
"""


def render_document() -> str:
    lines = [
        DOC_INTRO,
        "| route | method | URL requested | " + " | ".join(ROLES) + " |",
        "|---|---|---|" + "---|" * len(ROLES),
    ]
    for row in ROWS:
        data = POST_DATA.get(row.route) if row.method == "POST" else None
        url = row.url + (f" (action `{data['action']}`)" if data else "")
        cells = [f"`{row.route}`" if row.route else "(root)", row.method, url]
        cells += [row.expected[role] for role in ROLES]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def test_the_access_matrix_document_matches_the_table() -> None:
    text = render_document()
    if os.environ.get("UPDATE_ACCESS_MATRIX") == "1":
        DOC.write_text(text)
    assert DOC.read_text() == text, "docs/access-matrix.md is stale: regenerate it (see docstring)"
