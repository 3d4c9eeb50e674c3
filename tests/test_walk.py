"""Every page each role can reach, walked in Chromium (issue 15).

For Support, Auditor, Session admin and a superuser: sign in, then follow the navigation and the
main links of each page (cards, job pages, audit tabs, admin changelists and change pages), one
page per path shape (ids and query strings aside), at most MAX_PAGES per role. Each page must
answer 200, log no console error and no CSP violation (the `page` fixture fails the test on
either), and fit a 1366 px window without a horizontal scrollbar: long tables scroll inside their
card and long ids wrap (issue 15, item 8); the superuser, who sees every page, walks at 1920 px.
A full-page screenshot of each page lands in artifacts/screenshots/<role>/<page>.png
(git-ignored), which CI keeps as its artifact.
"""

from __future__ import annotations

import re
import shutil
from collections import deque
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from sessions_app import roles
from sessions_app.models import EndUser
from tests.browser import BROWSER_TESTS, log_in
from tests.factories import (
    PROJECT_ROOT,
    give_session,
    make_end_user,
    make_finished_job,
    make_staff,
    store_deleted_session,
    store_session,
)

pytestmark = BROWSER_TESTS

SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"
MAX_PAGES = 25

# The longest external id the console accepts (128 visible characters) and a long display name:
# the pages must still fit the window with them.
LONG_ID = "usr_" + "x" * 60 + "-" + "0123456789" * 6 + "end"
LONG_NAME = "Bartholomew Maximilian Featherstonehaugh-Cholmondeley of Llanfairpwllgwyngyll"

# Links a walk does not follow: leaving (logout), downloads (CSV exports), pages that add or
# delete (their forms are tested where they belong), and Django's own account pages.
SKIP = re.compile(
    r"(/logout/|\.csv|/export|/add/|/delete/|/import/|/password/|/history/|/accounts/|"
    r"^/healthz|/jsi18n/|/r/\d+/|^/admin/password_change/)"
)
# Django's and the libraries' own admin pages come after the console's: the walk is bounded.
THIRD_PARTY_ADMIN = re.compile(r"^/admin/(auth|axes|django_tasks_database)/")
# Path segments that name one object: a page shape is its path with these replaced.
OBJECT_SEGMENT = re.compile(
    r"^([0-9]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)
# Pages whose last segment names an object by slug: one of each is enough.
SLUG_PAGES = re.compile(r"^(/audit/access/toolkits/)[^/]+/$")


@pytest.fixture
def world(catalog: object, session_admin: User) -> EndUser:
    """Users with sessions (one replaced, one deleted), a long id, and an ended bulk job."""
    alice = make_end_user("usr_walk_alice", "Alice Walker", "alice@example.com")
    first = give_session(alice, ["github"], session_admin)
    store_deleted_session(alice, "trs_walkold0001deleted", session_admin)
    long_user = make_end_user(LONG_ID, LONG_NAME, "bartholomew.featherstonehaugh@example.com")
    give_session(long_user, ["github", "gmail", "slack"], session_admin)
    store_session(
        long_user,
        "trs_" + "superseded" * 5,
        status="superseded",
        superseded_at=timezone.now(),
        toolkits=["github", "gmail", "slack", "notion"],
    )
    make_finished_job(alice, first, session_admin, timezone.now() - timedelta(minutes=5))
    return alice


def shape(url: str) -> str:
    """The URL's path with its object ids replaced: one page of each shape is visited."""
    path = SLUG_PAGES.sub(r"\1:slug/", urlsplit(url).path)
    return "/".join(":id" if OBJECT_SEGMENT.match(s) else s for s in path.split("/"))


def page_name(path: str) -> str:
    name = shape(path).strip("/").replace("/", "-").replace(":id", "id")
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "root"


def links_on(page) -> list[str]:
    """The same-site links of the navigation and of the page's main content."""
    hrefs = page.eval_on_selector_all(
        "header nav a[href], main a[href], #header a[href], #nav-sidebar a[href], #content a[href]",
        "els => els.map(e => e.getAttribute('href'))",
    )
    out = []
    for href in hrefs:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path.startswith("/"):
            continue
        out.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return out


def walk(page, user: User, landing: str, role: str) -> tuple[list[str], list[str]]:
    """Sign in as `user`, walk every reachable page shape (breadth first): the URLs visited,
    and those wider than the window.

    On the Lookup the walk searches first, so the results lead on to the cards."""
    log_in(page, user, landing)
    folder = SCREENSHOTS / role
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = f"{landing}?q=usr_" if landing == "/support/" else landing
    queue, later = deque([start]), deque()
    seen_shapes: set[str] = set()
    visited: list[str] = []
    too_wide: list[str] = []
    while queue and len(visited) < MAX_PAGES:
        path = queue.popleft()
        if shape(path) in seen_shapes or SKIP.search(urlsplit(path).path):
            continue
        seen_shapes.add(shape(path))
        response = page.goto(path)
        assert response is not None and response.status == 200, (role, path, response.status)
        page.wait_for_load_state("networkidle")
        visited.append(path)
        overflow = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
        page.screenshot(path=str(folder / f"{page_name(path)}.png"), full_page=True)
        if overflow[0] > overflow[1]:
            too_wide.append(f"{path} is {overflow[0]} px wide")
        found = [p for p in links_on(page) if shape(p) not in seen_shapes]
        queue.extend(p for p in found if not THIRD_PARTY_ADMIN.match(p))
        later.extend(p for p in found if THIRD_PARTY_ADMIN.match(p))
        if not queue:
            queue, later = later, deque()
    return visited, too_wide


ROLES = {
    "support": (roles.SUPPORT, "/support/"),
    "auditor": (roles.AUDITOR, "/audit/events/"),
    "session-admin": (roles.SESSION_ADMIN, "/support/"),
}


@pytest.mark.parametrize("role", [*ROLES, "superuser"])
def test_every_page_of_each_role_opens_clean_and_fits_the_window(world: EndUser, role: str, page):
    if role == "superuser":
        # The superuser sees every page: walked on a 1920 px screen, the others on 1366 px.
        page.set_viewport_size({"width": 1920, "height": 1080})
        user = User.objects.create_superuser("walk_root", password="pw-walk_root")
        landing = "/support/"
    else:
        group, landing = ROLES[role]
        user = make_staff(f"walk_{role.replace('-', '_')}", group)

    visited, too_wide = walk(page, user, landing, role)

    # Each role reached every page its navigation offers, and more than the landing.
    page.goto(landing)
    for nav in page.eval_on_selector_all("header nav a[href]", "els => els.map(e => e.pathname)"):
        if not SKIP.search(nav):
            assert shape(nav) in {shape(v) for v in visited}, (role, nav, visited)
    assert len(visited) > 1, visited
    print(f"{role}: {len(visited)} pages", *visited, sep="\n  ")
    assert too_wide == [], too_wide
