"""The access matrix: who gets what from every URL the project serves, one row a route and method.

The matrix is the decision record of who may open what. tests/suites/test_access.py walks it for
every role, fails when the resolver serves a URL it does not list, and keeps docs/access-matrix.md
equal to it; tests/suites/test_bad_input_matrix.py walks it again for CSRF and side effects.

Answers, per role:
- `200`, `403`, `404`, `405`: that status code;
- `login`: a redirect to the console's login page (/accounts/login/);
- `admin login`: a redirect to the admin's login page (/admin/login/);
- `302`: any other redirect (after a POST, the admin's "/<id>/" -> "/<id>/change/", ...);
- a trailing ` audited`: the answer also wrote an `access.refused` audit event. Every 403 is
  audited: the console's refusals, refused admin actions (the console's refusal page naming the
  action and the role), and Django's own admin 403s, which reach the console's refusal page
  through `handler403` (`sessions_app.access.refused_view`).

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

from sessions_app.models import ToolRouterSession

ROLES = ("anonymous", "support", "session admin", "auditor", "no role", "superuser")

# --- The matrix ---------------------------------------------------------------------------------
#
# (route as the resolver spells it, method, expected answer per role in the order of ROLES). The
# URL requested is the route with each parameter replaced by a real object (`url_of`); a route
# may have several rows (GET and POST). A POST to an admin list posts the action in POST_DATA.
# The rows every admin model has, and the two of a POST-only URL, are spelled once
# (`admin_model`, `post_only`); answers many rows share are named.

A = "admin login"
L = "login"
OK = "200"
NOA = "403 audited"
R = "302"
NF = "404"
NA = "405"

# Answers shared by many rows, one a role in the order of ROLES.
EVERYONE = (OK, OK, OK, OK, OK, OK)
REDIRECTED = (L, R, R, R, R, R)  # logged-in users are sent on
GET_OF_A_POST_URL = (L, NA, NA, NA, NA, NA)  # a POST-only URL refuses any GET
REFUSED = (L, NOA, NOA, NOA, NOA, NOA)  # nobody, the superuser included
SUPERUSER_ONLY = (L, NOA, NOA, NOA, NOA, OK)
STAFF_READERS = (L, OK, OK, OK, NOA, OK)  # support, session admin, auditor
SESSION_ADMIN = (L, NOA, OK, NOA, NOA, OK)
SESSION_ADMIN_REDIRECTED = (L, NOA, R, NOA, NOA, R)
AUDITOR = (L, NOA, NOA, OK, NOA, OK)
SUPPORT = (L, OK, OK, NOA, NOA, OK)

Answers = tuple[str, str, str, str, str, str]
MatrixRow = tuple[str, str, Answers]


def admin_model(model: str, view: Answers, *, add: Answers, delete: Answers) -> list[MatrixRow]:
    """The six GET rows the admin serves for one model (`app_label/model_name`).

    Whoever may `view` it gets its list, an object's history and its change page; `add` and
    `delete` are the add page and an object's delete page; an object's bare URL redirects.
    """
    changelist = f"admin/{model}/"
    obj = f"{changelist}<path:object_id>/"
    return [
        (changelist, "GET", view),
        (f"{changelist}add/", "GET", add),
        (f"{obj}history/", "GET", view),
        (f"{obj}delete/", "GET", delete),
        (f"{obj}change/", "GET", view),
        (obj, "GET", REDIRECTED),
    ]


def admin_site(route: str, method: str, logged_in: tuple[str, str, str, str, str]) -> MatrixRow:
    """A page of the admin site itself (not a model's), which sends anonymous visitors to the
    admin's login page; `logged_in` is what each other role gets, in the order of ROLES."""
    return (route, method, (A, *logged_in))


def post_only(route: str, post: Answers) -> list[MatrixRow]:
    """A POST-only URL: a GET answers 405 to whoever is logged in, the POST as `post` says."""
    return [(route, "GET", GET_OF_A_POST_URL), (route, "POST", post)]


# fmt: off
MATRIX: list[MatrixRow] = [
    # route, method,  (anonymous, support, session admin, auditor, no role, superuser)
    ("", "GET", (L, R, R, R, OK, R)),  # each role to its landing; no role: "no role yet"
    ("healthz", "GET", EVERYONE),
    ("accounts/login/", "GET", (OK, R, R, R, R, R)),  # signed in: on to one's landing page
    ("accounts/logout/", "GET", (L, OK, OK, OK, OK, OK)),  # "Sign out?" with its button
    ("accounts/logout/", "POST", (L, L, L, L, L, L)),
    admin_site("admin/", "GET", (OK, OK, OK, OK, OK)),
    # The admin's login page sends visitors to the console's sign-in (allauth), ?next= back.
    ("admin/login/", "GET", (L, R, R, R, R, R)),
    admin_site("admin/logout/", "GET", (NA, NA, NA, NA, NA)),
    admin_site("admin/logout/", "POST", (L, L, L, L, L)),
    admin_site("admin/password_change/", "GET", (OK, OK, OK, OK, OK)),
    admin_site("admin/password_change/done/", "GET", (OK, OK, OK, OK, OK)),
    admin_site("admin/autocomplete/", "GET", (NOA, NOA, NOA, NOA, NOA)),
    admin_site("admin/jsi18n/", "GET", (OK, OK, OK, OK, OK)),
    admin_site("admin/r/<path:content_type_id>/<path:object_id>/", "GET", (NF, NF, NF, NF, NF)),
    *admin_model("auth/group", SUPERUSER_ONLY, add=SUPERUSER_ONLY, delete=SUPERUSER_ONLY),
    ("admin/auth/user/<id>/password/", "GET", SUPERUSER_ONLY),
    *admin_model("auth/user", SUPERUSER_ONLY, add=SUPERUSER_ONLY, delete=SUPERUSER_ONLY),
    *admin_model("axes/accessattempt", SUPERUSER_ONLY, add=REFUSED, delete=SUPERUSER_ONLY),
    *admin_model("axes/accesslog", SUPERUSER_ONLY, add=REFUSED, delete=SUPERUSER_ONLY),
    *admin_model("axes/accessfailurelog", SUPERUSER_ONLY, add=REFUSED, delete=SUPERUSER_ONLY),
    *admin_model("django_tasks_database/dbtaskresult", SUPERUSER_ONLY, add=REFUSED, delete=REFUSED),
    ("admin/sessions_app/enduser/import/", "GET", SESSION_ADMIN),
    ("admin/sessions_app/enduser/import/", "POST", SESSION_ADMIN),
    *admin_model("sessions_app/enduser", STAFF_READERS, add=SESSION_ADMIN, delete=REFUSED),
    ("admin/sessions_app/enduser/", "POST", (L, NOA, OK, NOA, NOA, OK)),
    *admin_model("sessions_app/toolroutersession", STAFF_READERS, add=REFUSED, delete=REFUSED),
    ("admin/sessions_app/toolroutersession/", "POST", (L, NOA, R, NOA, NOA, R)),
    *post_only("admin/sessions_app/toolkit/sync/", (L, NOA, R, NOA, NOA, R)),
    *admin_model("sessions_app/toolkit", STAFF_READERS, add=REFUSED, delete=REFUSED),
    ("admin/sessions_app/toolkit/", "POST", (L, NOA, R, NOA, NOA, R)),
    *admin_model("sessions_app/bulkjob", SESSION_ADMIN, add=REFUSED, delete=REFUSED),
    *admin_model("sessions_app/sessionoperation", SESSION_ADMIN, add=REFUSED, delete=REFUSED),
    *admin_model("sessions_app/auditevent", AUDITOR, add=REFUSED, delete=REFUSED),
    *admin_model("mfa/authenticator", SUPERUSER_ONLY, add=REFUSED, delete=SUPERUSER_ONLY),
    admin_site("admin/^(?P<app_label>auth|axes|django_tasks_database|sessions_app|mfa)/$", "GET",
        (OK, OK, OK, NF, OK)),
    admin_site("admin/(?P<url>.*)$", "GET", (NF, NF, NF, NF, NF)),
    ("jobs/", "GET", SESSION_ADMIN),
    ("jobs/<uuid:public_id>/", "GET", SESSION_ADMIN),
    ("jobs/<uuid:public_id>/progress/", "GET", SESSION_ADMIN_REDIRECTED),
    ("jobs/<uuid:public_id>/failures.csv", "GET", SESSION_ADMIN),
    *post_only("jobs/<uuid:public_id>/cancel/", SESSION_ADMIN_REDIRECTED),
    *post_only("jobs/<uuid:public_id>/retry/", SESSION_ADMIN_REDIRECTED),
    ("audit/", "GET", AUDITOR),
    ("audit/events/", "GET", AUDITOR),
    ("audit/access/", "GET", AUDITOR),
    ("audit/access/users/", "GET", AUDITOR),
    ("audit/access/toolkits/<slug:slug>/", "GET", AUDITOR),
    ("support/", "GET", SUPPORT),
    ("support/attention/", "GET", SUPPORT),
    ("support/users/<uuid:public_id>/", "GET", SUPPORT),
    ("support/users/<uuid:public_id>/row/", "GET", (L, R, R, NOA, NOA, R)),
    *post_only("support/sessions/<uuid:public_id>/reveal/", SUPPORT),
    ("support/sessions/<uuid:public_id>/connections/", "GET", SUPPORT),
    *post_only("support/sessions/<uuid:public_id>/connections/check/", SUPPORT),
    ("support/sessions/<uuid:public_id>/accounts/", "GET", SUPPORT),
    *post_only("support/sessions/<uuid:public_id>/accounts/check/", SUPPORT),
    ("support/sessions/<uuid:public_id>/accounts/<str:account>/status/", "GET", SESSION_ADMIN),
    ("support/sessions/<uuid:public_id>/accounts/<str:account>/status/", "POST",
        SESSION_ADMIN_REDIRECTED),
    *post_only("support/sessions/<uuid:public_id>/toolkits/<slug:toolkit>/link/", SUPPORT),
    ("support/users/<uuid:public_id>/refresh/", "GET", SESSION_ADMIN),
    ("support/users/<uuid:public_id>/refresh/", "POST", SESSION_ADMIN_REDIRECTED),
    ("support/users/<uuid:public_id>/executions/", "GET", SUPPORT),
    *post_only("support/users/<uuid:public_id>/executions/<str:log_id>/", SUPPORT),
    ("support/users/<uuid:public_id>/timeline/", "GET", SUPPORT),
    # Sign-in (allauth, sessions_app/signin/urls.py). Anyone signed in manages their own factors;
    # changing them needs a recent sign-in or check (302: asked again first). The world's
    # superuser has no password and no factor: nothing to ask again with (403). The "no role"
    # user holds the world's recovery codes.
    ("accounts/inactive/", "GET", EVERYONE),
    ("accounts/inactive/", "POST", (NA, NA, NA, NA, NA, NA)),
    ("accounts/reauthenticate/", "GET", (L, OK, OK, OK, OK, NOA)),
    ("accounts/reauthenticate/", "POST", (L, OK, OK, OK, OK, NOA)),
    ("accounts/password/change/", "GET", (L, OK, OK, OK, OK, R)),
    ("accounts/password/change/", "POST", (L, OK, OK, OK, OK, R)),
    ("accounts/2fa/", "GET", (L, OK, OK, OK, OK, OK)),
    ("accounts/2fa/", "POST", GET_OF_A_POST_URL),
    ("accounts/2fa/authenticate/", "GET", REDIRECTED),
    ("accounts/2fa/authenticate/", "POST", REDIRECTED),
    ("accounts/2fa/reauthenticate/", "GET", (L, R, R, R, OK, NOA)),
    ("accounts/2fa/reauthenticate/", "POST", (L, R, R, R, OK, NOA)),
    ("accounts/2fa/totp/activate/", "GET", (L, R, R, R, R, NOA)),
    ("accounts/2fa/totp/activate/", "POST", (L, R, R, R, R, NOA)),
    ("accounts/2fa/totp/deactivate/", "GET", (L, NF, NF, NF, NF, NF)),
    ("accounts/2fa/totp/deactivate/", "POST", (L, NF, NF, NF, NF, NF)),
    ("accounts/2fa/recovery-codes/", "GET", (L, NF, NF, NF, R, NF)),
    ("accounts/2fa/recovery-codes/", "POST", GET_OF_A_POST_URL),
    ("accounts/2fa/recovery-codes/generate/", "GET", (L, R, R, R, R, NOA)),
    ("accounts/2fa/recovery-codes/generate/", "POST", (L, R, R, R, R, NOA)),
    ("accounts/2fa/recovery-codes/download/", "GET", (L, NF, NF, NF, R, NF)),
    ("accounts/2fa/recovery-codes/download/", "POST", (L, NF, NF, NF, R, NF)),
    ("accounts/2fa/webauthn/", "GET", (L, OK, OK, OK, OK, OK)),
    ("accounts/2fa/webauthn/", "POST", GET_OF_A_POST_URL),
    ("accounts/2fa/webauthn/add/", "GET", (L, R, R, R, R, NOA)),
    ("accounts/2fa/webauthn/add/", "POST", (L, R, R, R, R, NOA)),
    ("accounts/2fa/webauthn/reauthenticate/", "GET", (L, R, R, R, R, NOA)),
    ("accounts/2fa/webauthn/reauthenticate/", "POST", (L, R, R, R, R, NOA)),
    ("accounts/2fa/webauthn/keys/<int:pk>/remove/", "GET", (L, R, R, R, R, NOA)),
    ("accounts/2fa/webauthn/keys/<int:pk>/remove/", "POST", (L, R, R, R, R, NOA)),
    ("accounts/2fa/webauthn/keys/<int:pk>/edit/", "GET", (L, R, R, R, R, NOA)),
    ("accounts/2fa/webauthn/keys/<int:pk>/edit/", "POST", (L, R, R, R, R, NOA)),
    ("accounts/2fa/webauthn/login/", "GET", REDIRECTED),
    ("accounts/2fa/webauthn/login/", "POST", REDIRECTED),
    ("accounts/3rdparty/login/cancelled/", "GET", EVERYONE),
    ("accounts/3rdparty/login/cancelled/", "POST", (NA, NA, NA, NA, NA, NA)),
    ("accounts/3rdparty/login/error/", "GET", (L, "401", "401", "401", "401", "401")),
    ("accounts/3rdparty/login/error/", "POST", GET_OF_A_POST_URL),
    # SSO: 404 while no SSO_ISSUER_URL is set (tests/signin/test_sso.py drives it when set).
    *[(f"accounts/oidc/^(?P<provider_id>[^/]+)/login/{end}", method, (NF,) * 6)
      for end in ("", "callback/") for method in ("GET", "POST")],
    # allauth's sign-up, email, password-reset, sign-in-code and connection pages: nobody.
    *[(f"accounts/{route}", method, (NF,) * 6)
      for route in ("signup/", "email/", "password/set/", "password/reset/",
                    "reauthenticate/code/", "reauthenticate/code/confirm/", "login/code/",
                    "login/code/confirm/", "3rdparty/", "3rdparty/signup/")
      for method in ("GET", "POST")],
]
# fmt: on

# Routes whose URL cannot be spelled from the route alone.
URL_OVERRIDES = {
    "": "/",
    "admin/r/<path:content_type_id>/<path:object_id>/": "/admin/r/{enduser_ct}/{enduser}/",
    "admin/^(?P<app_label>auth|axes|django_tasks_database|sessions_app|mfa)/$": (
        "/admin/sessions_app/"
    ),
    "admin/(?P<url>.*)$": "/admin/no-such-page/",
    "accounts/oidc/^(?P<provider_id>[^/]+)/login/": "/accounts/oidc/sso/login/",
    "accounts/oidc/^(?P<provider_id>[^/]+)/login/callback/": "/accounts/oidc/sso/login/callback/",
}
_PARAMETERS = [
    (re.compile(r"([a-z_]+)/<path:object_id>/"), r"\1/{\1}/"),
    (re.compile(r"<id>"), "{user}"),
    (re.compile(r"^support/users/<uuid:public_id>/"), "support/users/{end_user_uuid}/"),
    (re.compile(r"^support/sessions/<uuid:public_id>/"), "support/sessions/{session_uuid}/"),
    (re.compile(r"^jobs/<uuid:public_id>/"), "jobs/{job_uuid}/"),
    (re.compile(r"<slug:slug>"), "{toolkit_slug}"),
    (re.compile(r"<slug:toolkit>"), "{toolkit_slug}"),
    (re.compile(r"<str:account>"), "{account_fp}"),
    (re.compile(r"<str:log_id>"), "{execution_log}"),
    (re.compile(r"<int:pk>"), "{authenticator}"),
]

# What a POST row sends: admin actions name their action and the selected object.
POST_DATA: dict[str, dict[str, str]] = {
    "admin/sessions_app/enduser/": {"action": "create_sessions", "_selected_action": "{enduser}"},
    "admin/sessions_app/toolroutersession/": {
        "action": "retry_remote_deletes",
        "_selected_action": "{toolroutersession}",
    },
    "admin/sessions_app/toolkit/": {"action": "allow_toolkits", "_selected_action": "{toolkit}"},
    "support/sessions/<uuid:public_id>/accounts/<str:account>/status/": {"enabled": "false"},
}


def url_of(route: str) -> str:
    """The URL requested for a route, its parameters as `{placeholders}` (`access_placeholders`)."""
    if route in URL_OVERRIDES:
        return URL_OVERRIDES[route]
    for pattern, replacement in _PARAMETERS:
        route = pattern.sub(replacement, route)
    return "/" + route


def access_placeholders(access_world: dict[str, Any]) -> dict[str, Any]:
    """The object ids the access matrix's URLs name, read fresh for each request.

    Fresh each time: a refresh earlier in a walk replaces the active session.
    """
    session = access_world["end_user"].sessions.get(status=ToolRouterSession.Status.ACTIVE)
    return {
        **access_world["ids"],
        "toolroutersession": session.pk,
        "session_uuid": session.public_id,
    }


def access_url(template: str, access_world: dict[str, Any]) -> str:
    """A URL template of the access matrix with its `{placeholders}` filled from the world."""
    return template.format(**access_placeholders(access_world))


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
