"""Browser tests' shared parts: Debian's Chromium driven by Playwright (no download), a page
that fails its test on any console error or CSP violation, and the marks every browser test
module carries. Registered as a plugin by tests/conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connections

from tests.factories import PROJECT_ROOT

# Playwright's sync API runs an event loop in this thread; the test still talks to the database
# synchronously from it (fixtures, assertions), which Django refuses unless told it is fine.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = PROJECT_ROOT / "test-results"

BROWSER_TESTS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"
    ),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def chromium() -> Iterator[object]:
    # Function-scoped on purpose: while Playwright runs, its event loop makes Django hand this
    # thread a separate database connection wrapper, one without the serialized test data that
    # transactional tests restore (roles). Test fixtures therefore run before the browser starts
    # (they come first in each test's arguments) and the flush runs after it stopped.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()
        # Database connections opened while Playwright's loop ran live in that context only:
        # close them here, or PostgreSQL cannot drop the test database at the end.
        connections.close_all()


@pytest.fixture
def page(chromium, live_server) -> Iterator[object]:
    context = chromium.new_context(
        base_url=live_server.url,
        permissions=["clipboard-read", "clipboard-write"],
        viewport={"width": 1366, "height": 800},
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    # Any console error (a blocked inline style or script shows as one: a CSP violation) or
    # uncaught page error fails the test, unless the test expects that HTTP status.
    problems: list[str] = []
    page.on(
        "console",
        lambda m: m.type == "error" and problems.append(f"{m.text} ({m.location.get('url')})"),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield page
    context.close()
    allowed = EXPECTED_STATUSES.pop(id(page), set())
    unexpected = [p for p in problems if not any(f"status of {status} " in p for status in allowed)]
    assert unexpected == [], unexpected


# Statuses a test expects an HTMX request to answer with (Chromium logs each as a console error):
# `expect_statuses(page, 429)`.
EXPECTED_STATUSES: dict[int, set[int]] = {}


def expect_statuses(page: object, *statuses: int) -> None:
    EXPECTED_STATUSES.setdefault(id(page), set()).update(statuses)


def shot(page, folder: str, name: str) -> None:
    """A full-page screenshot in test-results/<folder>/<name>.png."""
    (SHOTS / folder).mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / folder / f"{name}.png"), full_page=True)


def log_in(page, user: User, landing: str) -> None:
    """Sign in through the login form (password "pw-<username>") and land on `landing`."""
    page.goto(f"/accounts/login/?next={landing}")
    page.fill("#id_login", user.username)
    page.fill("#id_password", "pw-" + user.username)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{landing}")
