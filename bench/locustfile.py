"""Simulated support staff for bench/load.py (locust, headless). Not meant to be run by hand.

Each user logs in once through the real login form (CSRF token from the form, session cookie),
reads the CSRF token htmx sends from the lookup page, then loops: an htmx lookup for a random
prefix of an existing external id or email, the card of one result, and now and then a reveal of
the MCP URL (a POST with the CSRF header). A response counts as an error unless it is what a person
would see: the right status and the expected content.

Configured by bench/load.py through the environment:
- LOAD_ACCOUNTS: JSON list of [username, password], one per simulated user;
- LOAD_TARGETS: a file with one "external_id<TAB>email" line per end user to search for;
- LOAD_SAMPLES: where to write every request (JSON lines) when the run ends;
- LOAD_DURATION: seconds to run once every user has logged in (the measured window);
- LOAD_MAX_ITERATIONS: loop iterations per user at most;
- LOAD_THINK_MIN / LOAD_THINK_MAX: seconds a person pauses between two actions;
- LOAD_REVEAL_EVERY: one iteration in this many also reveals.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from pathlib import Path
from typing import Any

import gevent
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

ACCOUNTS: list[list[str]] = json.loads(os.environ.get("LOAD_ACCOUNTS", "[]"))
TARGETS = (
    [
        line.split("\t")
        for line in Path(os.environ["LOAD_TARGETS"]).read_text().splitlines()
        if "\t" in line
    ]
    if os.environ.get("LOAD_TARGETS")
    else []
)
DURATION = float(os.environ.get("LOAD_DURATION", "60"))
MAX_ITERATIONS = int(os.environ.get("LOAD_MAX_ITERATIONS", "100000"))
REVEAL_EVERY = int(os.environ.get("LOAD_REVEAL_EVERY", "10"))
THINK = (float(os.environ.get("LOAD_THINK_MIN", "1")), float(os.environ.get("LOAD_THINK_MAX", "3")))

FORM_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
HTMX_TOKEN = re.compile(r'"x-csrftoken": "([^"]+)"')
CARD_LINK = re.compile(r'href="(/support/users/[0-9a-f-]{36}/)"')
REVEAL_URL = re.compile(r'hx-post="(/support/sessions/[0-9a-f-]{36}/reveal/)"')

SAMPLES: list[dict[str, Any]] = []
STATE = {"next_account": 0, "logged_in": 0, "steady_at": None}


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception, **kwargs) -> None:  # noqa: ANN001
    SAMPLES.append(
        {
            "kind": name,
            "ms": response_time,
            "ok": exception is None,
            "error": None if exception is None else str(exception)[:200],
            "end": time.time(),
        }
    )


@events.quitting.add_listener
def _dump(environment, **kwargs) -> None:  # noqa: ANN001
    path = os.environ.get("LOAD_SAMPLES")
    if path:
        meta = {"kind": "_meta", "steady_at": STATE["steady_at"], "logged_in": STATE["logged_in"]}
        with open(path, "w") as out:
            for sample in [meta, *SAMPLES]:
                out.write(json.dumps(sample) + "\n")


def _prefix(rng: random.Random) -> str:
    """What support types: most of an external id, or the start of an email (any case)."""
    external_id, email = rng.choice(TARGETS)
    if rng.random() < 0.5:
        return external_id[: rng.randint(max(3, len(external_id) // 2), len(external_id))]
    local = email.split("@")[0]
    typed = email[: rng.randint(min(len(local), 3), len(email))]
    return typed.lower() if rng.random() < 0.5 else typed


class SupportUser(FastHttpUser):
    wait_time = between(*THINK)
    # One connection per simulated person, like a browser tab.
    concurrency = 1

    def on_start(self) -> None:
        index = STATE["next_account"]
        STATE["next_account"] += 1
        if index >= len(ACCOUNTS):
            raise StopUser()
        username, password = ACCOUNTS[index]
        self.rng = random.Random(index)
        self.iterations = 0
        with self.client.get("/accounts/login/", name="login page", catch_response=True) as r:
            found = FORM_TOKEN.search(r.text or "")
            if r.status_code != 200 or not found:
                r.failure(f"login page: {r.status_code}, form token found: {bool(found)}")
                raise StopUser()
        # The console's sign-in form (django-allauth: the username travels as `login`), then the
        # landing page, which sends Support to the lookup page.
        form = {"login": username, "password": password, "csrfmiddlewaretoken": found[1]}
        with self.client.post(
            "/accounts/login/", data=form, name="login", allow_redirects=False, catch_response=True
        ) as r:
            if r.status_code != 302 or r.headers.get("Location", "") not in ("/", "/support/"):
                r.failure(f"login answered {r.status_code} to {username}")
                raise StopUser()
        with self.client.get("/support/", name="lookup page", catch_response=True) as r:
            found = HTMX_TOKEN.search(r.text or "")
            if r.status_code != 200 or not found:
                r.failure(f"lookup page: {r.status_code}, htmx token found: {bool(found)}")
                raise StopUser()
        self.csrf = found[1]
        STATE["logged_in"] += 1
        if STATE["logged_in"] == len(ACCOUNTS):
            STATE["steady_at"] = time.time()
            # Quit from a greenlet of its own: a user quitting the runner would kill itself first.
            gevent.spawn_later(DURATION, self.environment.runner.quit)

    def _htmx(self, target: str) -> dict[str, str]:
        return {
            "HX-Request": "true",
            "HX-Target": target,
            "HX-Current-URL": self.host + "/support/",
        }

    @task
    def lookup_card_reveal(self) -> None:
        steady = STATE["steady_at"]
        if steady is not None and time.time() > steady + DURATION:
            return  # the window is over; the runner is quitting
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise StopUser()
        q = _prefix(self.rng)
        with self.client.get(
            "/support/",
            params={"q": q},
            headers=self._htmx("results"),
            name="lookup",
            catch_response=True,
        ) as r:
            links = CARD_LINK.findall(r.text or "")
            if r.status_code != 200 or not links:
                r.failure(f"lookup {q!r}: {r.status_code}, {len(links)} results")
                return
        self.wait()
        with self.client.get(
            self.rng.choice(links), headers=self._htmx("card"), name="card", catch_response=True
        ) as r:
            reveal = REVEAL_URL.search(r.text or "")
            if r.status_code != 200 or 'id="user-card"' not in (r.text or ""):
                r.failure(f"card: {r.status_code}")
                return
        if reveal is None or self.rng.randrange(REVEAL_EVERY) != 0:
            return
        self.wait()
        with self.client.post(
            reveal[1],
            headers={**self._htmx(f"mcp-{reveal[1].split('/')[3]}"), "X-CSRFToken": self.csrf},
            name="reveal",
            catch_response=True,
        ) as r:
            if r.status_code != 200 or "/mcp" not in (r.text or ""):
                r.failure(f"reveal: {r.status_code}")
