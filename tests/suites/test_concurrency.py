"""Concurrency suite (PostgreSQL): threads released together by a barrier, the emulator holding
the first create. Two refreshes make one remote create; two staff acting on one user never leave
two active sessions; 20 reveals at once write 20 chained audit events; two reconcile runs never
act twice on one intent.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse

from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, SessionOperation, ToolRouterSession
from sessions_app.tool_router import reconcile, sessions
from tests.factories import client_for, create_unstored_session, give_session
from tests.helpers import ON_POSTGRESQL, run_together

pytestmark = ON_POSTGRESQL


def test_two_refreshes_of_one_user_at_once_make_exactly_one_remote_create(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    old = give_session(alice, ["github"], session_admin)
    catalog.reset()
    release = threading.Event()
    catalog.faults.hold("session.create", release)
    done: list[str] = []

    def refresh() -> sessions.SessionResult:
        result = sessions.tool_router_session_refresh(
            end_user=alice, toolkits=["gmail"], actor=session_admin
        )
        done.append(result.outcome)
        if result.outcome == "in_progress":
            release.set()  # the loser is answered while the winner's create is still held
        return result

    results = run_together(refresh, refresh)

    assert sorted(r.outcome for r in results) == ["in_progress", "succeeded"]  # type: ignore[union-attr]
    assert done[0] == "in_progress"  # answered at once, not after the held create
    assert catalog.count("session.create") == 1
    [active] = ToolRouterSession.objects.filter(end_user=alice, status="active")
    assert active.session_id in catalog.sessions and old.session_id not in catalog.sessions
    loser = next(r for r in results if r.outcome == "in_progress")  # type: ignore[union-attr]
    assert "already in progress" in loser.message  # type: ignore[union-attr]


def test_a_refresh_that_waits_for_a_user_held_by_reconciliation_sees_what_it_committed(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    session = give_session(alice, ["github"], session_admin)
    holding, go = threading.Event(), threading.Event()

    def reconcile_like() -> None:
        # Reconciliation writes under the end user's lock with no intent of its own (adopting a
        # re-scope Composio made, say). A claim that waited for the lock must see the change.
        with transaction.atomic():
            EndUser.objects.select_for_update(no_key=True).filter(pk=alice.pk).get()
            holding.set()
            assert go.wait(10)
            ToolRouterSession.objects.filter(pk=session.pk).update(toolkits=["gmail"])

    def refresh_keeping_toolkits() -> sessions.SessionResult:
        assert holding.wait(10)
        threading.Timer(0.3, go.set).start()  # the refresh is waiting for the lock by then
        return sessions.tool_router_session_refresh(end_user=alice, actor=session_admin)

    held, result = run_together(reconcile_like, refresh_keeping_toolkits)

    assert held is None
    assert isinstance(result, sessions.SessionResult) and result.ok, result
    assert result.session is not None and result.session.toolkits == ["gmail"]
    assert result.session.replaces_id == session.pk


def test_two_staff_creating_for_the_same_users_at_once_never_leave_two_active_sessions(
    catalog: Emulator, session_admin: User
) -> None:
    # Bulk jobs are not in the tree yet: a system actor (as the bulk worker acts, actor=None)
    # and a session admin race on the same ten users through the session services.
    users = [EndUser.objects.create(external_id=f"usr_{n}") for n in range(10)]
    release = threading.Event()
    catalog.faults.hold("session.create", release)

    def create_all(actor: User | None, toolkits: list[str]) -> Callable[[], list[str]]:
        def run() -> list[str]:
            outcomes = []
            for user in users:
                outcomes.append(
                    sessions.tool_router_session_create(
                        end_user=user, toolkits=toolkits, actor=actor
                    ).outcome
                )
            return outcomes

        return run

    timer = threading.Timer(0.5, release.set)
    timer.start()
    system, admin = run_together(create_all(None, ["github"]), create_all(session_admin, ["gmail"]))
    timer.cancel()

    for n, user in enumerate(users):
        assert isinstance(system, list) and isinstance(admin, list), (system, admin)
        outcomes = sorted([system[n], admin[n]])
        assert outcomes in (["in_progress", "succeeded"], ["skipped", "succeeded"]), outcomes
        assert ToolRouterSession.objects.filter(end_user=user, status="active").count() == 1
        remote = [
            s for s in catalog.sessions.values() if s["config"]["user_id"] == user.external_id
        ]
        assert len(remote) == 1  # exactly one remote create per user
    assert catalog.count("session.create") == len(users)


def test_a_bulk_refresh_and_a_manual_refresh_of_the_same_users_never_leave_two_active_sessions(
    catalog: Emulator, session_admin: User, settings, immediate: None
) -> None:
    bulk = pytest.importorskip("sessions_app.bulk.jobs", reason="bulk jobs are not in the tree yet")
    settings.BULK_RATE_PER_MINUTE = 600_000
    settings.BULK_CONCURRENCY = 1
    users = [EndUser.objects.create(external_id=f"usr_{n}") for n in range(5)]
    for user in users:
        sessions.tool_router_session_create(end_user=user, toolkits=["github"], actor=None)
    catalog.reset()
    release = threading.Event()
    catalog.faults.hold("session.create", release)

    def by_bulk() -> object:
        return bulk.bulk_job_start(
            kind="refresh",
            end_users=EndUser.objects.filter(pk__in=[u.pk for u in users]),
            toolkits=["gmail"],
            actor=session_admin,
        )

    def by_hand() -> list[str]:
        return [
            sessions.tool_router_session_refresh(
                end_user=user, toolkits=["slack"], actor=session_admin
            ).outcome
            for user in reversed(users)
        ]

    timer = threading.Timer(0.5, release.set)
    timer.start()
    job, manual = run_together(by_bulk, by_hand)
    timer.cancel()

    assert not isinstance(job, BaseException) and not isinstance(manual, BaseException), (
        job,
        manual,
    )
    for user in users:
        [active] = ToolRouterSession.objects.filter(end_user=user, status="active")
        live = [s for s in catalog.sessions.values() if s["config"]["user_id"] == user.external_id]
        # Every replaced session was deleted at Composio: one live session, the active one.
        assert [s["session_id"] for s in live] == [active.session_id]
    assert not SessionOperation.objects.filter(state__in=["pending", "unknown"]).exists()


def test_twenty_reveals_at_once_write_twenty_audit_events_and_the_chain_holds(
    catalog: Emulator, alice: EndUser, session_admin: User, support_user: User
) -> None:
    session = give_session(alice, ["github"], session_admin)
    url = reverse("sessions_app:support_mcp_reveal", args=[session.public_id])
    clients = [client_for(support_user) for _ in range(20)]
    before = AuditEvent.objects.count()

    responses = run_together(*[lambda c=c: c.post(url) for c in clients])

    assert [r.status_code for r in responses] == [HTTPStatus.OK] * 20  # type: ignore[union-attr]
    assert all(session.mcp_url in r.content.decode() for r in responses)  # type: ignore[union-attr]
    reveals = AuditEvent.objects.filter(action="mcp_url.reveal", outcome="success")
    assert reveals.count() == 20 and AuditEvent.objects.count() == before + 20
    assert set(reveals.values_list("actor_id", flat=True)) == {support_user.pk}
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert out.getvalue().startswith(f"Audit chain intact: {before + 20} events")


def test_two_reconcile_runs_at_once_never_act_twice_on_one_intent(
    catalog: Emulator, alice: EndUser, session_admin: User
) -> None:
    result = create_unstored_session(alice, ["github"], session_admin)
    assert result.outcome == "unknown"
    release = threading.Event()
    catalog.faults.hold("session.get", release)  # the first run holds its intent meanwhile
    finished: list[reconcile.ReconcileReport] = []

    def run() -> reconcile.ReconcileReport:
        report = reconcile.reconcile(grace=_zero(), settle=_zero())
        finished.append(report)
        release.set()  # the run that found the intent locked is done: let the other go on
        return report

    reports = run_together(run, run)

    results = sorted(i.result for r in reports for i in r.items)  # type: ignore[union-attr]
    assert results == ["adopted", "busy"]
    assert finished[0].items[0].result == "busy"  # skipped the locked intent without waiting
    assert catalog.count("session.get") == 1
    assert ToolRouterSession.objects.filter(end_user=alice, status="active").count() == 1
    assert AuditEvent.objects.filter(action="session.reconcile").count() == 1
    assert SessionOperation.objects.get().state == "resolved"
    assert reconcile.reconcile(grace=_zero(), settle=_zero()).items == []


def _zero():  # noqa: ANN202
    from datetime import timedelta

    return timedelta(0)
