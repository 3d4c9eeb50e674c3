"""The toolkit admin: audited allow-list actions, catalog sync, usage counts, vanished toolkits."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, Toolkit
from sessions_app.tool_router import toolkit_catalog
from tests.factories import SHIPPED_CATALOG, allow_toolkits, give_session, make_end_user
from tests.helpers import messages_of

pytestmark = pytest.mark.django_db


def changelist() -> str:
    return reverse("admin:sessions_app_toolkit_changelist")


def sync_url() -> str:
    return reverse("admin:sessions_app_toolkit_sync")


@pytest.fixture
def synced(emulator: Emulator) -> Emulator:
    toolkit_catalog.toolkit_catalog_sync()
    emulator.reset()
    return emulator


def act(client: Client, action: str, slugs: list[str]):
    pks = list(Toolkit.objects.filter(slug__in=slugs).values_list("pk", flat=True))
    return client.post(
        changelist(), {"action": action, "_selected_action": pks, "index": "0"}, follow=True
    )


def test_allowing_toolkits_is_audited_per_toolkit(session_admin_client: Client, synced) -> None:
    response = act(session_admin_client, "allow_toolkits", ["github", "gmail"])

    assert "Allowed 2 toolkits: github, gmail." in messages_of(response)
    assert set(Toolkit.objects.filter(is_allowed=True).values_list("slug", flat=True)) == {
        "github",
        "gmail",
    }
    events = AuditEvent.objects.filter(action="toolkit.allow", outcome="success")
    assert sorted(e.details["toolkit"] for e in events) == ["github", "gmail"]


def test_disallowing_a_toolkit_in_use_warns_that_sessions_still_grant_it(
    session_admin_client: Client, synced, session_admin: User
) -> None:
    allow_toolkits(["github"])
    give_session(make_end_user("usr_1"), ["github"], session_admin)

    response = act(session_admin_client, "disallow_toolkits", ["github"])

    messages = messages_of(response)
    assert "Disallowed 1 toolkit: github." in messages
    assert any("Active sessions still grant github (1)" in m for m in messages)
    assert AuditEvent.objects.get(action="toolkit.disallow").details["active_sessions"] == 1


def test_the_list_counts_active_sessions_per_toolkit_and_links_to_them(
    session_admin_client: Client, synced, session_admin: User
) -> None:
    allow_toolkits(["github", "slack"])
    for n in (1, 2):
        give_session(make_end_user(f"usr_{n}"), ["github"], session_admin)

    response = session_admin_client.get(changelist(), {"used": "yes"})

    assert [t.slug for t in response.context["cl"].result_list] == ["github"]
    assert "?status__exact=active&amp;toolkit=github" in response.content.decode()


def test_a_vanished_toolkit_is_flagged_and_its_sessions_are_easy_to_find(
    session_admin_client: Client, synced, session_admin: User
) -> None:
    allow_toolkits(["github"])
    give_session(make_end_user("usr_1"), ["github"], session_admin)
    synced.set_catalog([t for t in SHIPPED_CATALOG if t["slug"] != "github"])

    response = session_admin_client.post(sync_url(), follow=True)

    messages = messages_of(response)
    assert any("No longer in Composio's catalog: github" in m for m in messages)
    page = session_admin_client.get(changelist(), {"used": "stale"})
    assert [t.slug for t in page.context["cl"].result_list] == ["github"]
    html = page.content.decode()
    assert "NO LONGER LISTED" in html and "no longer listed in Composio" in html


def test_allowing_a_vanished_toolkit_is_refused(session_admin_client: Client, synced) -> None:
    Toolkit.objects.filter(slug="github").update(in_catalog=False)

    response = act(session_admin_client, "allow_toolkits", ["github"])

    assert any("no longer lists them: github" in m for m in messages_of(response))
    assert not Toolkit.objects.get(slug="github").is_allowed


def test_sync_is_post_only_and_needs_its_permission(
    client: Client, support_user: User, session_admin_client: Client, synced
) -> None:
    assert session_admin_client.get(sync_url()).status_code == HTTPStatus.METHOD_NOT_ALLOWED

    client.force_login(support_user)
    assert client.post(sync_url()).status_code == HTTPStatus.FORBIDDEN
    assert synced.requests == []
    assert AuditEvent.objects.filter(action="access.refused").exists()


def test_sync_failure_is_shown(session_admin_client: Client, synced) -> None:
    synced.faults.enqueue(401, endpoint="toolkits.list")

    response = session_admin_client.post(sync_url(), follow=True)

    assert any("not synced" in m and "401" in m for m in messages_of(response))


def test_allow_list_actions_are_hidden_from_support_and_refused_if_posted(
    client: Client, support_user: User, synced
) -> None:
    client.force_login(support_user)
    html = client.get(changelist()).content.decode()
    assert 'value="allow_toolkits"' not in html and sync_url() not in html

    act(client, "allow_toolkits", ["github"])

    assert not Toolkit.objects.filter(is_allowed=True).exists()
    details = AuditEvent.objects.get(action="access.refused").details
    assert details["operation"] == "admin.toolkit.allow_toolkits"
    assert details["missing"] == ["sessions_app.manage_toolkit_allowlist"]


def test_allowing_one_toolkit_reads_in_the_singular(session_admin_client: Client, synced) -> None:
    response = act(session_admin_client, "allow_toolkits", ["github"])

    assert "Allowed 1 toolkit: github." in messages_of(response)
