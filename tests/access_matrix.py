"""The access matrix: who gets what from every URL the project serves, one row a route and method.

The matrix is the decision record of who may open what. tests/suites/test_access.py walks it for
every role, fails when the resolver serves a URL it does not list, and keeps docs/access-matrix.md
equal to it; tests/suites/test_bad_input_matrix.py walks it again for CSRF and side effects.

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

import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

ROLES = ("anonymous", "support", "session admin", "auditor", "no role", "superuser")

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
    ("support/sessions/<uuid:public_id>/connections/check/", "GET", (L, NA, NA, NA, NA, NA)),
    ("support/sessions/<uuid:public_id>/connections/check/", "POST", (L, OK, OK, NOA, NOA, OK)),
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
    """The URL requested for a route, its parameters as `{placeholders}` (`access_placeholders`)."""
    if route in URL_OVERRIDES:
        return URL_OVERRIDES[route]
    for pattern, replacement in _PARAMETERS:
        route = pattern.sub(replacement, route)
    return "/" + route


@dataclass(frozen=True)
class Row:
    """One row of the matrix: a route, a method and the answer each role gets."""

    route: str
    method: str
    expected: dict[str, str] = field(hash=False)

    @property
    def url(self) -> str:
        return url_of(self.route)

    def post_data(self, values: dict[str, Any]) -> dict[str, str]:
        """What a POST of this row sends, the world's object ids (`values`) filled in."""
        return {k: v.format(**values) for k, v in POST_DATA.get(self.route, {}).items()}


ROWS = [Row(r, m, dict(zip(ROLES, e, strict=True))) for r, m, e in MATRIX]


def answer(response: Any) -> str:
    """The matrix's word for a response: its status code, or which login page it redirects to."""
    if response.status_code in (HTTPStatus.FOUND, HTTPStatus.MOVED_PERMANENTLY):
        location = response["Location"]
        if location.startswith("/accounts/login/"):
            return L
        if location.startswith("/admin/login/"):
            return A
        return "302"
    return str(response.status_code)
