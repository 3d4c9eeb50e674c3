"""Report figures equal a brute-force count over the same session history."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from http import HTTPStatus

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessions_app import trail
from sessions_app.audit import reports
from sessions_app.audit.point_in_time import access_on
from sessions_app.models import EndUser, SessionToolkit, Toolkit, ToolRouterSession
from sessions_app.tool_router import rollups

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
SLUGS = ["alpha", "beta", "gamma", "delta"]

# One step of a user's history: which toolkits, how long (hours) it lasted, how it ended.
step = st.tuples(
    st.sets(st.sampled_from(SLUGS), min_size=1),
    st.integers(min_value=1, max_value=24 * 6),
    st.sampled_from(["superseded", "deleted"]),
)
histories = st.lists(
    st.tuples(
        st.lists(step, min_size=1, max_size=4),
        st.booleans(),  # the last session is still active
        st.integers(min_value=0, max_value=24 * 5),  # start offset (hours)
    ),
    min_size=1,
    max_size=5,
)
toolkit_flags = st.tuples(st.sets(st.sampled_from(SLUGS)), st.sets(st.sampled_from(SLUGS)))


def _build(history, allowed: set[str], vanished: set[str]) -> list[dict]:
    toolkits = {
        slug: Toolkit.objects.create(
            slug=slug, name=slug, is_allowed=slug in allowed, in_catalog=slug not in vanished
        )
        for slug in SLUGS
    }
    made: list[dict] = []
    for n, (steps, last_active, offset) in enumerate(history):
        user = EndUser.objects.create(external_id=f"user_{n}")
        at = T0 + dt.timedelta(hours=offset)
        previous = None
        for i, (slugs, hours, how) in enumerate(steps):
            is_last = i == len(steps) - 1
            active = is_last and last_active
            end = None if active else at + dt.timedelta(hours=hours)
            # Only a refresh (superseded, followed by another session) links the next session.
            ending = "superseded" if not is_last else how
            session = ToolRouterSession.objects.create(
                end_user=user,
                session_id=f"trs_{n}_{i}",
                mcp_url="https://mcp.example.test/x",
                toolkits=sorted(slugs),
                status="active" if active else ending,
                superseded_at=end if ending == "superseded" and not active else None,
                deleted_at=end if ending == "deleted" and not active else None,
                replaces=previous["session"]
                if previous and previous["ending"] == "superseded"
                else None,
            )
            ToolRouterSession.objects.filter(pk=session.pk).update(created_at=at)
            SessionToolkit.objects.bulk_create(
                [SessionToolkit(session=session, toolkit=toolkits[s]) for s in slugs]
            )
            record = {
                "user": user.external_id,
                "session": session,
                "slugs": set(slugs),
                "start": at,
                "end": end,
                "active": active,
                "ending": ending,
                "replaces": previous if previous and previous["ending"] == "superseded" else None,
            }
            made.append(record)
            previous = record
            # A refresh starts the next session when the old one ends; a delete leaves a gap.
            at = (end or at) + (
                dt.timedelta(hours=0) if ending == "superseded" else dt.timedelta(hours=3)
            )
    return made


def assert_toolkit_access_is_counted(
    made: list[dict], allowed: set[str], vanished: set[str]
) -> None:
    """The access report's users per toolkit now, its flagged toolkits and its two filters."""
    now_users: Counter[str] = Counter()
    for record in made:
        if record["active"]:
            now_users.update(record["slugs"])
    rows = reports.toolkit_access()
    expected = {s: now_users[s] for s in SLUGS if now_users[s] or s in allowed}
    assert {r.slug: r.users for r in rows} == expected
    assert [r.slug for r in reports.flagged_toolkits()] == sorted(
        (s for s in now_users if s not in allowed or s in vanished),
        key=lambda s: (-now_users[s], s),
    )
    assert sorted(r.slug for r in reports.toolkit_access(allowed=True)) == sorted(
        s for s in expected if s in allowed
    )
    assert sorted(r.slug for r in reports.toolkit_access(not_in_catalog=True)) == sorted(
        s for s in expected if s in vanished
    )
    # Granted in a range: active sessions created on those days (the rollup's `active` by day).
    first, last = T0.date() + dt.timedelta(days=1), T0.date() + dt.timedelta(days=3)
    dated: Counter[str] = Counter()
    for record in made:
        if record["active"] and first <= record["start"].date() <= last:
            dated.update(record["slugs"])
    every, in_range = reports.active_counts_with_range(first, last)
    slugs = dict(Toolkit.objects.values_list("pk", "slug"))
    assert {slugs[pk]: n for pk, n in every.items()} == +now_users
    assert {slugs[pk]: n for pk, n in in_range.items()} == +dated


def assert_access_on_every_other_day(made: list[dict], toolkit: Toolkit) -> None:
    """Who had the toolkit on a day, for every other day of the histories' span."""
    days = [T0.date() + dt.timedelta(days=n) for n in range(0, 40, 2)]
    for day in days:
        start, end = reports.day_bounds(day)
        brute = {
            r["user"]
            for r in made
            if toolkit.slug in r["slugs"]
            and r["start"] < end
            and (r["end"] is None or r["end"] > start)
        }
        assert {p.external_id for p in access_on(toolkit=toolkit, day=day)} == brute


def assert_holders_since_their_first_grant(made: list[dict], toolkit: Toolkit) -> None:
    """Who holds the toolkit now, each since the start of the unbroken run of refreshes that
    kept it."""
    holders = list(reports.toolkit_holders(toolkit=toolkit, chunk=2))
    brute_holders = {}
    for r in made:
        if r["active"] and toolkit.slug in r["slugs"]:
            first = r
            while first["replaces"] is not None and toolkit.slug in first["replaces"]["slugs"]:
                first = first["replaces"]
            brute_holders[r["user"]] = first["start"]
    assert {h.external_id: h.since for h in holders} == brute_holders


def assert_grants_and_revocations_per_day(made: list[dict]) -> None:
    """Toolkits granted and revoked each day: a refresh grants and revokes only the difference."""
    grants: Counter[dt.date] = Counter()
    revocations: Counter[dt.date] = Counter()
    successors = {id(r["replaces"]): r for r in made if r["replaces"] is not None}
    for r in made:
        before = r["replaces"]["slugs"] if r["replaces"] else set()
        grants[r["start"].date()] += len(r["slugs"] - before)
        if r["end"] is not None:
            after = successors[id(r)]["slugs"] if id(r) in successors else set()
            revocations[r["end"].date()] += len(r["slugs"] - after)
    first_day, last_day = T0.date() - dt.timedelta(days=1), T0.date() + dt.timedelta(days=60)
    series = reports.grants_and_revocations(first_day=first_day, last_day=last_day)
    assert {d.day: d.grants for d in series if d.grants} == +grants
    assert {d.day: d.revocations for d in series if d.revocations} == +revocations


@pytest.mark.django_db
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=histories, flags=toolkit_flags)
def test_report_figures_equal_a_brute_force_count(history, flags) -> None:
    allowed, vanished = flags
    with transaction.atomic():
        made = _build(history, allowed, vanished)
        rollups.rebuild()  # the rows were written without the services
        assert rollups.stored() == rollups.recomputed()

        assert_toolkit_access_is_counted(made, allowed, vanished)
        for slug in SLUGS:
            toolkit = Toolkit.objects.get(slug=slug)
            assert_access_on_every_other_day(made, toolkit)
            assert_holders_since_their_first_grant(made, toolkit)
        assert_grants_and_revocations_per_day(made)
        users = list(reports.user_access(chunk=2))
        assert {(u.external_id, u.toolkits) for u in users} == {
            (r["user"], tuple(sorted(r["slugs"]))) for r in made if r["active"]
        }
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_a_toolkit_changed_in_place_counts_only_while_it_was_granted(session_admin) -> None:
    user = EndUser.objects.create(external_id="alice")
    for slug in ("github", "slack"):
        Toolkit.objects.create(slug=slug, name=slug, is_allowed=True)
    session = ToolRouterSession.objects.create(
        end_user=user, session_id="trs_1", mcp_url="https://mcp.example.test/x", toolkits=["slack"]
    )
    ToolRouterSession.objects.filter(pk=session.pk).update(created_at=T0)
    SessionToolkit.objects.create(session=session, toolkit=Toolkit.objects.get(slug="slack"))
    # github was granted at creation and removed in place 2 days later (an audited change).
    event = trail.record(
        action="session.change_toolkits",
        outcome="success",
        actor=session_admin,
        end_user=user,
        session=session,
        details={"before": ["github", "slack"], "toolkits": ["slack"]},
    )
    # The event's time is when the change happened; record() stamps "now", which is after T0.
    github = Toolkit.objects.get(slug="github")
    assert [p.external_id for p in access_on(toolkit=github, day=T0.date())] == ["alice"]
    after = event.created_at.date() + dt.timedelta(days=1)
    assert access_on(toolkit=github, day=after) == []
    slack = Toolkit.objects.get(slug="slack")
    assert [p.external_id for p in access_on(toolkit=slack, day=after)] == ["alice"]
    rollups.rebuild()  # the rows were written without the services
    series = reports.grants_and_revocations(
        first_day=event.created_at.date(), last_day=event.created_at.date()
    )
    assert series[0].revocations == 1


def _seed(n_users: int) -> None:
    toolkits = [
        Toolkit.objects.create(slug=f"tk{i}", name=f"TK {i}", is_allowed=i % 2 == 0)
        for i in range(6)
    ]
    for n in range(n_users):
        user = EndUser.objects.create(external_id=f"u{n:04d}")
        old = ToolRouterSession.objects.create(
            end_user=user,
            session_id=f"old_{n}",
            mcp_url="https://mcp.example.test/x",
            toolkits=["tk0"],
            status="superseded",
            superseded_at=T0,
        )
        SessionToolkit.objects.create(session=old, toolkit=toolkits[0])
        new = ToolRouterSession.objects.create(
            end_user=user,
            session_id=f"new_{n}",
            mcp_url="https://mcp.example.test/x",
            toolkits=["tk0", "tk1"],
            replaces=old,
        )
        SessionToolkit.objects.bulk_create(
            [SessionToolkit(session=new, toolkit=t) for t in toolkits[: 1 + n % 5]]
        )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "query"),
    [
        ("audit:access", {}),
        ("audit:access", {"toolkit": "tk0", "on": "2025-03-01", "granted_from": "2025-01-01"}),
        ("audit:access_users", {}),
        ("audit:access_toolkit", {}),
        ("audit:events", {"toolkit": "tk1"}),
    ],
)
def test_the_report_runs_a_fixed_number_of_queries_as_data_grows(
    auditor_client: Client, url, query, django_assert_max_num_queries
) -> None:
    client = auditor_client
    args = ["tk0"] if url == "audit:access_toolkit" else []
    counts = []
    client.get(reverse("audit:events"))  # the first request fills the staff user's cache entry
    for size in (3, 40):
        _seed(size) if size == 3 else _seed_more(size)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse(url, args=args), query).status_code == HTTPStatus.OK
        counts.append(len(queries))
    assert counts[0] == counts[1]
    with django_assert_max_num_queries(14):
        client.get(reverse(url, args=args), query)


def _seed_more(size: int) -> None:
    toolkits = list(Toolkit.objects.order_by("slug"))
    for n in range(3, size):
        user = EndUser.objects.create(external_id=f"u{n:04d}")
        session = ToolRouterSession.objects.create(
            end_user=user, session_id=f"new_{n}", mcp_url="https://mcp.example.test/x", toolkits=[]
        )
        SessionToolkit.objects.bulk_create(
            [SessionToolkit(session=session, toolkit=t) for t in toolkits[: 1 + n % 5]]
        )
        trail.record(action="session.create", outcome="success", end_user=user, session=session)
