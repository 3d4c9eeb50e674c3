"""Who may read the auditor's pages: anonymous visitors log in, other roles are refused (and the
refusal audited), auditors read every page but never reveal an MCP URL, and the audit log's
admin is read-only."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse

from sessions_app import trail
from sessions_app.models import AuditEvent
from tests.factories import client_for, store_grant

# Each page: the view refusing it (the refusal's `operation`) and the permission it needs.
PAGE_ACCESS = {
    reverse("audit:index"): ("event_list", "sessions_app.view_auditevent"),
    reverse("audit:events"): ("event_list", "sessions_app.view_auditevent"),
    reverse("audit:access"): ("access_report", "sessions_app.view_access_report"),
    reverse("audit:access_users"): ("access_users", "sessions_app.view_access_report"),
}
PAGES = list(PAGE_ACCESS)


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(url: str) -> None:
    response = Client().get(url)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
@pytest.mark.parametrize("actor", ["support_user", "outsider", "session_admin"])
def test_other_roles_are_refused_and_the_refusal_is_audited(url: str, actor: str, request) -> None:
    user = request.getfixturevalue(actor)
    response = client_for(user).get(url)
    assert response.status_code == HTTPStatus.FORBIDDEN
    # The console's refusal page names the role that holds the missing permission.
    assert b"This needs the Auditor role" in response.content
    event = AuditEvent.objects.get(action="access.refused")
    assert event.outcome == "refused" and event.actor_username == user.username
    operation, permission = PAGE_ACCESS[url]
    assert event.details == {
        "operation": operation,
        "missing": [permission],
        "target": "",
        "method": "GET",
        "path": url,
        "count": 1,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_auditors_may_read_every_page(url: str, auditor) -> None:
    response = client_for(auditor).get(url)
    assert response.status_code == HTTPStatus.OK
    assert not AuditEvent.objects.filter(action="access.refused").exists()


@pytest.mark.django_db
def test_the_toolkit_drill_down_follows_the_same_rules(auditor, support_user) -> None:
    store_grant("u_1", ["github"])
    url = reverse("audit:access_toolkit", args=["github"])
    assert Client().get(url).status_code == HTTPStatus.FOUND
    assert client_for(support_user).get(url).status_code == HTTPStatus.FORBIDDEN
    assert client_for(auditor).get(url).status_code == HTTPStatus.OK


@pytest.mark.django_db
def test_auditors_cannot_reveal_mcp_urls(auditor) -> None:
    assert not auditor.has_perm("sessions_app.reveal_mcp_url")
    session = store_grant("u_1", ["github"])
    try:
        url = reverse("sessions_app:support_mcp_reveal", args=[session.public_id])
    except NoReverseMatch:
        pytest.skip("the support console has no reveal URL under that name")
    response = client_for(auditor).post(url)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert b"SENTINEL-MCP-TOKEN" not in response.content
    assert not AuditEvent.objects.filter(action="mcp_url.reveal", outcome="success").exists()


@pytest.mark.django_db
def test_the_audit_log_admin_is_read_only_for_auditors(auditor, support_user) -> None:
    event = trail.record(action="catalog.sync", outcome="success", reason="synced")
    client = client_for(auditor)
    changelist = client.get(reverse("admin:sessions_app_auditevent_changelist"))
    assert changelist.status_code == HTTPStatus.OK
    assert b"synced" in changelist.content
    assert (
        client.get(reverse("admin:sessions_app_auditevent_add")).status_code == HTTPStatus.FORBIDDEN
    )
    detail = client.get(reverse("admin:sessions_app_auditevent_change", args=[event.pk]))
    assert detail.status_code == HTTPStatus.OK and b'name="_save"' not in detail.content
    delete = client.post(
        reverse("admin:sessions_app_auditevent_delete", args=[event.pk]), {"post": "yes"}
    )
    assert delete.status_code == HTTPStatus.FORBIDDEN
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    changelist_url = reverse("admin:sessions_app_auditevent_changelist")
    refused = client_for(support_user).get(changelist_url)
    assert refused.status_code == HTTPStatus.FORBIDDEN
    assert b"This needs the Auditor role" in refused.content
    (event,) = AuditEvent.objects.filter(
        action="access.refused", actor_username=support_user.username
    )
    assert event.details == {
        "operation": "admin.view_auditevent",
        "missing": ["sessions_app.view_auditevent"],
        "target": "",
        "method": "GET",
        "path": changelist_url,
        "count": 1,
    }
