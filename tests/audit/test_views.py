"""The auditor's pages: who may see them, what they show, what the CSV exports contain."""

from __future__ import annotations

import csv
import datetime as dt
import io
from http import HTTPStatus

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from sessions_app import trail
from sessions_app.models import AuditEvent, EndUser, SessionToolkit, Toolkit, ToolRouterSession
from sessions_app.tool_router import mcp_url
from tests.factories import client_for

SECRET_URL = "https://mcp.example.test/tool_router/trs_secret/mcp?token=SENTINEL-MCP-TOKEN"
API_KEY = "sk-SENTINEL-API-KEY-123456"

# Each page: the view refusing it (the refusal's `operation`) and the permission it needs.
PAGE_ACCESS = {
    reverse("audit:index"): ("event_list", "sessions_app.view_auditevent"),
    reverse("audit:events"): ("event_list", "sessions_app.view_auditevent"),
    reverse("audit:access"): ("access_report", "sessions_app.view_access_report"),
    reverse("audit:access_users"): ("access_users", "sessions_app.view_access_report"),
}
PAGES = list(PAGE_ACCESS)


def _grant(
    external_id: str, slugs: list[str], *, by=None, status="active", **times
) -> ToolRouterSession:
    end_user, _ = EndUser.objects.get_or_create(external_id=external_id)
    session = ToolRouterSession.objects.create(
        end_user=end_user,
        session_id=f"trs_{external_id}_{ToolRouterSession.objects.count()}",
        mcp_url=SECRET_URL,
        toolkits=slugs,
        status=status,
        created_by=by,
        **{k: v for k, v in times.items() if k != "created_at"},
    )
    if "created_at" in times:
        ToolRouterSession.objects.filter(pk=session.pk).update(created_at=times["created_at"])
        session.refresh_from_db()
    for slug in slugs:
        toolkit, _ = Toolkit.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
        SessionToolkit.objects.create(session=session, toolkit=toolkit)
    return session


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


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
    }


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_auditors_may_read_every_page(url: str, auditor) -> None:
    response = client_for(auditor).get(url)
    assert response.status_code == HTTPStatus.OK
    assert not AuditEvent.objects.filter(action="access.refused").exists()


@pytest.mark.django_db
def test_the_toolkit_drill_down_follows_the_same_rules(auditor, support_user) -> None:
    _grant("u_1", ["github"])
    url = reverse("audit:access_toolkit", args=["github"])
    assert Client().get(url).status_code == HTTPStatus.FOUND
    assert client_for(support_user).get(url).status_code == HTTPStatus.FORBIDDEN
    assert client_for(auditor).get(url).status_code == HTTPStatus.OK


@pytest.mark.django_db
def test_auditors_cannot_reveal_mcp_urls(auditor) -> None:
    assert not auditor.has_perm("sessions_app.reveal_mcp_url")
    session = _grant("u_1", ["github"])
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
    }


# --- The audit log ------------------------------------------------------------------------------


@pytest.fixture
def some_events(db) -> None:
    alice = EndUser.objects.create(external_id="alice")
    trail.record(action="catalog.sync", outcome="success", reason="sync one")
    trail.record(action="toolkit.allow", outcome="success", details={"toolkit": "github"})
    trail.record(
        action="session.create",
        outcome="failure",
        end_user=alice,
        reason="rate limited",
        details={"toolkits": ["github", "slack"]},
    )
    trail.record(
        action="session.create", outcome="success", end_user=alice, details={"toolkits": ["slack"]}
    )


def _event_rows(response) -> list[str]:
    return [event.reason or event.action for event in response.context["events"]]


@pytest.mark.django_db
def test_the_log_shows_newest_first(auditor, some_events) -> None:
    response = client_for(auditor).get(reverse("audit:events"))
    # 5 is the auditor's own login, audited like every login.
    assert [e.sequence for e in response.context["events"]] == [5, 4, 3, 2, 1]
    assert response.context["events"][0].action == "auth.login"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "sequences"),
    [
        ({"action": "session.create"}, [4, 3]),
        ({"outcome": "failure"}, [3]),
        ({"end_user": "alice"}, [4, 3]),
        ({"toolkit": "github"}, [3, 2]),
        ({"toolkit": "slack", "outcome": "success"}, [4]),
        ({"actor": "nobody"}, []),
    ],
)
def test_the_log_filters_by_each_field(auditor, some_events, query, sequences) -> None:
    response = client_for(auditor).get(reverse("audit:events"), query)
    assert [e.sequence for e in response.context["events"]] == sequences


@pytest.mark.django_db
def test_the_log_filters_by_staff_user_and_date_range(auditor, support_user) -> None:
    trail.record(action="auth.login", outcome="success", actor=support_user)
    trail.record(action="auth.login", outcome="success", actor=auditor)
    client = client_for(auditor)
    response = client.get(reverse("audit:events"), {"actor": support_user.username})
    assert [e.actor_username for e in response.context["events"]] == [support_user.username]
    today = timezone.now().date()
    assert (
        len(
            client.get(reverse("audit:events"), {"date_from": today, "date_to": today}).context[
                "events"
            ]
        )
        == 3
    )
    yesterday = today - dt.timedelta(days=1)
    assert client.get(reverse("audit:events"), {"date_to": yesterday}).context["events"] == []


@pytest.mark.django_db
def test_a_bad_filter_gets_a_clear_message_and_no_rows(auditor, some_events) -> None:
    response = client_for(auditor).get(
        reverse("audit:events"), {"date_from": "2025-02-01", "date_to": "2025-01-01"}
    )
    assert response.status_code == HTTPStatus.OK
    assert b"The start date is after the end date." in response.content
    assert response.context["events"] == []
    response = client_for(auditor).get(reverse("audit:events"), {"outcome": "hacked"})
    assert b"Select a valid choice" in response.content


@pytest.mark.django_db
def test_the_log_pages_by_sequence_without_counting(auditor, django_assert_max_num_queries) -> None:
    for n in range(60):
        trail.record(action="catalog.sync", outcome="success", reason=f"e{n}")
    client = client_for(auditor)
    with django_assert_max_num_queries(8):
        first = client.get(reverse("audit:events"), {"action": "catalog.sync"})
    assert len(first.context["events"]) == 50 and first.context["older"] == 11
    assert b"before=11" in first.content
    second = client.get(reverse("audit:events"), {"action": "catalog.sync", "before": 11})
    assert [e.sequence for e in second.context["events"]] == list(range(10, 0, -1))
    assert second.context["older"] is None


@pytest.mark.django_db
def test_the_log_export_streams_the_filtered_events_without_secrets(auditor, settings) -> None:
    settings.COMPOSIO_API_KEY = API_KEY
    alice = EndUser.objects.create(external_id="alice")
    session = _grant("alice", ["github"])
    trail.record(
        action="mcp_url.reveal",
        outcome="success",
        end_user=alice,
        session=session,
        details={"fingerprint": mcp_url.fingerprint(SECRET_URL)},
        reason=f"revealed; key {API_KEY} must not show",
    )
    trail.record(action="catalog.sync", outcome="success", reason='=HYPERLINK("x")')
    response = client_for(auditor).get(
        reverse("audit:events"), {"action": "mcp_url.reveal", "export": "csv"}
    )
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/csv")
    rows = _csv(response)
    assert rows[0][:4] == ["sequence", "time_utc", "action", "outcome"]
    assert [r[2] for r in rows[1:]] == ["mcp_url.reveal"]
    body = str(rows)
    assert "SENTINEL" not in body and "mcp.example.test" not in body
    assert mcp_url.fingerprint(SECRET_URL) in body
    everything = _csv(client_for(auditor).get(reverse("audit:events"), {"export": "csv"}))
    assert '\'=HYPERLINK("x")' in [r[10] for r in everything[1:]]


# --- The access report --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_report_flags_toolkits_no_longer_allowed_or_listed_at_the_top(auditor) -> None:
    _grant("u_1", ["github", "legacy"])
    _grant("u_2", ["github"])
    Toolkit.objects.filter(slug="github").update(is_allowed=True)
    Toolkit.objects.filter(slug="legacy").update(is_allowed=True, in_catalog=False)
    _grant("u_3", ["risky"])  # never allowed
    response = client_for(auditor).get(reverse("audit:access"))
    html = response.content.decode()
    assert [row.slug for row in response.context["flagged"]] == ["legacy", "risky"]
    flagged_section = html.split('id="flagged"')[1].split("</section>")[0]
    assert (
        "no longer in Composio&#x27;s catalog" in flagged_section
        and "not allowed" in flagged_section
    )
    assert html.index('id="flagged"') < html.index('id="toolkit-rows"')
    assert [(r.slug, r.users) for r in response.context["rows"]] == [
        ("github", 2),
        ("legacy", 1),
        ("risky", 1),
    ]


@pytest.mark.django_db
def test_the_report_draws_its_charts_as_inline_svg_without_script(auditor) -> None:
    _grant("u_1", ["github"])
    html = client_for(auditor).get(reverse("audit:access")).content.decode()
    assert html.count("<svg") == 2
    assert "End users per toolkit" in html and "grants (up) and revocations (down)" in html
    charts = html[html.index("<svg") : html.rindex("</svg>")]
    assert "<script" not in charts and "http://" not in charts.replace(
        "http://www.w3.org/2000/svg", ""
    )


@pytest.mark.django_db
def test_the_report_filters_allowed_and_no_longer_listed_toolkits(auditor) -> None:
    _grant("u_1", ["github", "legacy", "risky"])
    Toolkit.objects.filter(slug__in=["github", "legacy"]).update(is_allowed=True)
    Toolkit.objects.filter(slug="legacy").update(in_catalog=False)
    client = client_for(auditor)
    allowed = client.get(reverse("audit:access"), {"allowed": "yes"}).context["rows"]
    assert [r.slug for r in allowed] == ["github", "legacy"]
    disallowed = client.get(reverse("audit:access"), {"allowed": "no"}).context["rows"]
    assert [r.slug for r in disallowed] == ["risky"]
    vanished = client.get(reverse("audit:access"), {"not_in_catalog": "on"}).context["rows"]
    assert [r.slug for r in vanished] == ["legacy"]


@pytest.mark.django_db
def test_the_report_filters_grants_by_date_range(auditor) -> None:
    old = timezone.now() - dt.timedelta(days=40)
    _grant("u_old", ["github"], created_at=old)
    _grant("u_new", ["github", "slack"])
    today = timezone.now().date()
    rows = (
        client_for(auditor)
        .get(
            reverse("audit:access"),
            {"granted_from": today - dt.timedelta(days=1), "granted_to": today},
        )
        .context["rows"]
    )
    assert [(r.slug, r.users) for r in rows] == [("github", 1), ("slack", 1)]


@pytest.mark.django_db
def test_the_drill_down_names_users_since_when_and_granted_by_whom(auditor, session_admin) -> None:
    first = timezone.now() - dt.timedelta(days=10)
    old = _grant(
        "alice",
        ["github"],
        by=session_admin,
        status="superseded",
        created_at=first,
        superseded_at=timezone.now() - dt.timedelta(days=1),
    )
    new = _grant("alice", ["github", "slack"], by=auditor)
    ToolRouterSession.objects.filter(pk=new.pk).update(replaces=old)
    _grant("bob", ["slack"], by=auditor)
    response = client_for(auditor).get(reverse("audit:access_toolkit", args=["github"]))
    (holder,) = response.context["holders"]
    assert holder.external_id == "alice" and holder.session_id == new.session_id
    assert holder.since == first and holder.granted_by == session_admin.username
    slack = (
        client_for(auditor).get(reverse("audit:access_toolkit", args=["slack"])).context["holders"]
    )
    assert [(h.external_id, h.granted_by) for h in slack] == [
        ("alice", "aud_auditor"),
        ("bob", "aud_auditor"),
    ]


@pytest.mark.django_db
def test_the_point_in_time_question_is_answered_on_the_report_page(auditor) -> None:
    now = timezone.now()
    _grant(
        "alice",
        ["github"],
        status="superseded",
        created_at=now - dt.timedelta(days=20),
        superseded_at=now - dt.timedelta(days=10),
    )
    _grant("bob", ["github"], created_at=now - dt.timedelta(days=5))
    client = client_for(auditor)
    on = (now - dt.timedelta(days=15)).date()
    response = client.get(reverse("audit:access"), {"toolkit": "github", "on": on})
    assert [r.external_id for r in response.context["past"]] == ["alice"]
    assert b"1 end user</strong> could use <code>github</code>" in response.content
    today = client.get(reverse("audit:access"), {"toolkit": "github", "on": now.date()})
    assert [r.external_id for r in today.context["past"]] == ["bob"]
    unknown = client.get(reverse("audit:access"), {"toolkit": "nope", "on": now.date()})
    assert b"No toolkit &#x27;nope&#x27; is known to the console." in unknown.content
    assert unknown.context["past"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "query", "table"),
    [
        ("audit:access", {}, "toolkit-rows"),
        ("audit:access", {"allowed": "no"}, "toolkit-rows"),
        ("audit:access_users", {}, "user-rows"),
        ("audit:access_toolkit", {}, "holder-rows"),
        ("audit:access", {"toolkit": "github", "on": "TODAY"}, "point-rows"),
    ],
)
def test_every_csv_export_matches_the_rows_on_screen_and_holds_no_secret(
    auditor, settings, url, query, table
) -> None:
    settings.COMPOSIO_API_KEY = API_KEY
    _grant("alice", ["github", "slack"], by=auditor)
    _grant("bob", ["github"])
    _grant("=cmd", ["slack"])
    query = {
        k: (timezone.now().date().isoformat() if v == "TODAY" else v) for k, v in query.items()
    }
    args = ["github"] if url == "audit:access_toolkit" else []
    client = client_for(auditor)
    page = client.get(reverse(url, args=args), query)
    html = page.content.decode()
    section = html[html.index(f'id="{table}"') :]
    section = section[: section.index("</table>")]
    screen_rows = section.count("<tr>") - 1
    export = {"audit:access": "point_in_time" if "on" in query else "toolkits"}.get(url, "csv")
    response = client.get(reverse(url, args=args), {**query, "export": export})
    assert response["Content-Disposition"].startswith("attachment;")
    rows = _csv(response)
    assert len(rows) - 1 == screen_rows > 0
    for row in rows[1:]:
        first = row[0].lstrip("'")
        assert first in section or first.replace("=", "") in section
    body = str(rows)
    assert "SENTINEL" not in body and "mcp.example.test" not in body and API_KEY not in body
    assert "SENTINEL" not in html and "mcp.example.test" not in html
