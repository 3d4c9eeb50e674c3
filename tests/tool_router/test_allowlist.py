"""The allow-list service: who may change it, what it saves, what it audits."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from sessions_app import access
from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, Toolkit
from sessions_app.tool_router import sessions, toolkit_catalog
from sessions_app.tool_router.allowlist import toolkit_allowlist_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(emulator: Emulator) -> Emulator:
    toolkit_catalog.toolkit_catalog_sync()
    emulator.reset()
    return emulator


def kits(*slugs: str):
    return Toolkit.objects.filter(slug__in=slugs)


def last_sequence() -> int:
    """The sequence of the newest audit event (the sync writes its own)."""
    return AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0


@pytest.mark.parametrize("role", ["support_user", "auditor", "outsider"])
@pytest.mark.parametrize("allowed", [True, False])
def test_a_role_without_the_permission_is_refused_audited_and_nothing_is_saved(
    request: pytest.FixtureRequest, synced, role: str, allowed: bool
) -> None:
    actor: User = request.getfixturevalue(role)
    Toolkit.objects.filter(slug="slack").update(is_allowed=True)
    before = dict(Toolkit.objects.values_list("slug", "is_allowed"))
    since = last_sequence()

    with pytest.raises(access.Refused) as refused:
        toolkit_allowlist_set(toolkits=kits("github", "slack"), allowed=allowed, actor=actor)

    assert refused.value.missing == ("sessions_app.manage_toolkit_allowlist",)
    assert dict(Toolkit.objects.values_list("slug", "is_allowed")) == before
    event = AuditEvent.objects.get(sequence__gt=since)
    assert (event.action, event.outcome, event.actor_username) == (
        "access.refused",
        "refused",
        actor.username,
    )
    assert event.details["operation"] == ("toolkit.allow" if allowed else "toolkit.disallow")
    assert event.details["missing"] == ["sessions_app.manage_toolkit_allowlist"]


def test_a_session_admin_allows_a_toolkit_with_one_audit_event(synced, session_admin: User) -> None:
    since = last_sequence()

    result = toolkit_allowlist_set(toolkits=kits("github"), allowed=True, actor=session_admin)

    assert result.changed == ("github",) and result.allowed
    assert not result.not_in_catalog and not result.still_used
    assert Toolkit.objects.get(slug="github").is_allowed
    event = AuditEvent.objects.get(sequence__gt=since)
    assert (event.action, event.outcome, event.actor_username) == (
        "toolkit.allow",
        "success",
        session_admin.username,
    )
    assert event.details == {"toolkit": "github", "active_sessions": 0}


def test_a_session_admin_disallows_a_toolkit_in_use_with_one_audit_event(
    synced, session_admin: User
) -> None:
    toolkit_allowlist_set(toolkits=kits("github"), allowed=True, actor=session_admin)
    user = EndUser.objects.create(external_id="usr_1")
    session = sessions.tool_router_session_create(
        end_user=user, toolkits=["github"], actor=session_admin
    )
    assert session.ok
    since = last_sequence()

    result = toolkit_allowlist_set(toolkits=kits("github"), allowed=False, actor=session_admin)

    assert result.changed == ("github",) and result.still_used == (("github", 1),)
    assert not Toolkit.objects.get(slug="github").is_allowed
    event = AuditEvent.objects.get(sequence__gt=since)  # the create's events came before
    assert (event.action, event.outcome) == ("toolkit.disallow", "success")
    assert event.details == {"toolkit": "github", "active_sessions": 1}


def test_unchanged_and_vanished_toolkits_write_nothing(synced, session_admin: User) -> None:
    Toolkit.objects.filter(slug="slack").update(is_allowed=True)
    Toolkit.objects.filter(slug="github").update(in_catalog=False)
    since = last_sequence()

    result = toolkit_allowlist_set(
        toolkits=kits("github", "slack"), allowed=True, actor=session_admin
    )

    assert result.changed == () and result.not_in_catalog == ("github",)
    assert not Toolkit.objects.get(slug="github").is_allowed
    assert not AuditEvent.objects.filter(sequence__gt=since).exists()
