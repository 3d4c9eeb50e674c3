"""Access suite: every URL in the resolver, for every role, answers as the access matrix says.

The matrix (tests/access_matrix.py) is the decision record of who may open what. A URL the
resolver serves that the matrix does not list fails
`test_the_matrix_lists_every_url_the_project_serves`, so a new view cannot slip in without
someone deciding (and writing down) who may use it. The same table is in docs/access-matrix.md;
`test_the_access_matrix_document_matches_the_table` keeps them equal
(`UPDATE_ACCESS_MATRIX=1 pytest tests/suites/test_access.py -k document` rewrites the document).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from sessions_app.models import AuditEvent
from tests.access_matrix import POST_DATA, ROLES, ROWS, Row, access_placeholders, answer
from tests.factories import PROJECT_ROOT, client_for
from tests.helpers import fresh_refusal_windows

DOC = PROJECT_ROOT / "docs" / "access-matrix.md"

pytestmark = pytest.mark.usefixtures("fast_passwords")

# --- Walking the resolver -----------------------------------------------------------------------


def resolver_routes(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[str]:
    """Every route the project serves, the admin's included, as prefix + pattern text."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from resolver_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def request_row(row: Row, client: Client, access_world: dict[str, Any]) -> str:
    """The answer to one row, with " audited" when it wrote an `access.refused` event.

    Each row starts with no window of coalesced refusals open (as if a minute had passed since
    the previous row), so its refusal, if any, is written at once rather than only counted."""
    values = access_placeholders(access_world)
    url = row.url.format(**values)
    before = fresh_refusal_windows()
    get = row.method == "GET"
    response = client.get(url) if get else client.post(url, row.post_data(values))
    audited = AuditEvent.objects.filter(action="access.refused", sequence__gt=before).exists()
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
`tests/access_matrix.py` (`UPDATE_ACCESS_MATRIX=1 pytest tests/suites/test_access.py -k
document`); a test fails when the two differ, and another when the project serves a URL the
table does not list.

Roles: **anonymous** (not logged in), **support** (group Support), **session admin** (group
Session admin), **auditor** (group Auditor), **no role** (a staff user in no group), **superuser**.

Answers: `200`, `403`, `404`, `405` are status codes; `login` is a redirect to the console's login
page (`/accounts/login/`), `admin login` a redirect to the admin's login page (`/admin/login/`),
`302` any other redirect (after a POST, the admin's `<id>/` to `<id>/change/`). A trailing
**audited** means the answer also wrote an `access.refused` audit event: every 403 is audited,
refused admin actions and Django's own admin 403s included (both get the console's refusal page,
naming the role that would allow it; Django's through `handler403`).
`{...}` in a URL is a real object: an end user with an active session, its toolkit, intent and
audit events, a group, a staff user, axes records, a task result. POST rows to an admin list post
the named action for that object.

Two things the table shows that are easy to miss:

- Anonymous visitors to an admin *model* page are sent to the console's login page, not the
  admin's: `LoginRequiredMiddleware` answers before the admin's own check does (the admin index,
  app index, password and logout pages are marked login-not-required, so the admin sends those to
  `/admin/login/`). Either login page brings the user back (`?next=`).
- The reveal and check-now URLs answer 405 to a GET whoever asks (the method check runs before
  the permission check), so a GET never reveals, never skips the connection cache, never writes.
"""


def render_document() -> str:
    lines = [
        DOC_INTRO,
        "| route | method | URL requested | " + " | ".join(ROLES) + " |",
        "|---|---|---|" + "---|" * len(ROLES),
    ]
    for row in ROWS:
        data = POST_DATA.get(row.route) if row.method == "POST" else None
        sent = ", ".join(f"{k} `{v}`" for k, v in (data or {}).items() if k != "_selected_action")
        url = row.url + (f" ({sent})" if sent else "")
        cells = [f"`{row.route}`" if row.route else "(root)", row.method, url]
        cells += [row.expected[role] for role in ROLES]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def test_the_access_matrix_document_matches_the_table() -> None:
    text = render_document()
    if os.environ.get("UPDATE_ACCESS_MATRIX") == "1":
        DOC.write_text(text)
    assert DOC.read_text() == text, "docs/access-matrix.md is stale: regenerate it (see docstring)"
