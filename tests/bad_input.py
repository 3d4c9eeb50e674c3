"""The bad-input suites' inputs and table watch (tests/suites/test_bad_input_*.py).

Hypothesis sends random keys and values to every query parameter and form; every request must
answer below 500 and leave every table as it was, but for the audit events the view is
documented to write. `Watch` sees every table of every installed app, django-axes' and the task
queue's included, but `django_session`: logging a test client in writes it (and so may the staff
session clock), and it is not content the console owns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from django.apps import apps
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sessions_app.models import AuditEvent
from tests.helpers import fresh_refusal_windows

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# The page-by-page walks (27 pages, 15 paths) take fewer examples each, to keep the suite short.
FUZZ_PER_VIEW = settings(FUZZ, max_examples=20)

# Unicode look-alikes of slugs and ids the world holds.
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
# Edge values: numbers out of range, NULs and control characters, impossible dates, bad UUIDs,
# injections, and words the views read as keys.
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
# Any value a field or query parameter may be sent.
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
    """Query strings of up to six pairs: known keys or random ones, each with a random value."""
    keys = st.one_of(st.sampled_from(sorted(known) or ["q"]), st.text(max_size=20))
    return st.lists(st.tuples(keys, VALUES), max_size=6)


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


class Watch:
    """Before a request: every table. After: what changed, and the audit events written.

    The watch starts with no window of coalesced refusals open, so a refusal writes its event at
    once (and opens a window, the refusal table being part of the audit trail)."""

    def __init__(self) -> None:
        self.sequence = fresh_refusal_windows()
        self.before = snapshot()

    def events(self) -> list[tuple[str, str]]:
        """(action, outcome) of each audit event written since the watch began, oldest first."""
        return list(
            AuditEvent.objects.filter(sequence__gt=self.sequence)
            .order_by("sequence")
            .values_list("action", "outcome")
        )

    def changed_tables(self, *, allowed: Iterable[str] = ()) -> list[str]:
        """The tables that changed but the audit trail (read by `events`; with no window open at
        the start, no refusal can have been counted without an event) and `allowed`."""
        after = snapshot()
        skip = {"sessions_app.auditevent", "sessions_app.refusalwindow", *allowed}
        return sorted(k for k in self.before if k not in skip and self.before[k] != after[k])

    def assert_wrote(self, events: list[tuple[str, str]], *, allowed: Iterable[str] = ()) -> None:
        """Nothing changed but `allowed` tables, and exactly these audit events were written."""
        assert self.changed_tables(allowed=allowed) == []
        assert self.events() == events


def no_server_error(response: Any) -> Any:
    """The response, once it is known to answer below 500 (a streamed body read to its end)."""
    # Reading a streamed body (CSV exports) runs the code that writes it.
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)
    assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR, response.status_code
    return response


def harmless(send: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The response of `send(*args, **kwargs)` (a test client's `get` or `post`), once it is known
    to answer below 500, to have changed no table and to have written no audit event."""
    watch = Watch()
    response = no_server_error(send(*args, **kwargs))
    watch.assert_wrote([])
    return response


# The audit events a refused request and a rejected toolkit choice write.
REFUSED = [("access.refused", "refused")]
REJECTED = [("input.rejected", "rejected")]
