"""The access report: flagged toolkits, its charts and filters, the drill-down per toolkit, the
point-in-time question, and CSV exports that match the rows on screen."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import Toolkit, ToolRouterSession
from tests.factories import SECRET_API_KEY, client_for, store_grant
from tests.helpers import csv_rows


@pytest.mark.django_db
def test_the_report_flags_toolkits_no_longer_allowed_or_listed_at_the_top(auditor) -> None:
    store_grant("u_1", ["github", "legacy"])
    store_grant("u_2", ["github"])
    Toolkit.objects.filter(slug="github").update(is_allowed=True)
    Toolkit.objects.filter(slug="legacy").update(is_allowed=True, in_catalog=False)
    store_grant("u_3", ["risky"])  # never allowed
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
    store_grant("u_1", ["github"])
    html = client_for(auditor).get(reverse("audit:access")).content.decode()
    assert html.count("<svg") == 2
    assert "End users per toolkit" in html and "grants (up) and revocations (down)" in html
    charts = html[html.index("<svg") : html.rindex("</svg>")]
    assert "<script" not in charts and "http://" not in charts.replace(
        "http://www.w3.org/2000/svg", ""
    )


@pytest.mark.django_db
def test_the_report_filters_allowed_and_no_longer_listed_toolkits(auditor) -> None:
    store_grant("u_1", ["github", "legacy", "risky"])
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
    store_grant("u_old", ["github"], created_at=old)
    store_grant("u_new", ["github", "slack"])
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
    old = store_grant(
        "alice",
        ["github"],
        by=session_admin,
        status="superseded",
        created_at=first,
        superseded_at=timezone.now() - dt.timedelta(days=1),
    )
    new = store_grant("alice", ["github", "slack"], by=auditor)
    ToolRouterSession.objects.filter(pk=new.pk).update(replaces=old)
    store_grant("bob", ["slack"], by=auditor)
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
    store_grant(
        "alice",
        ["github"],
        status="superseded",
        created_at=now - dt.timedelta(days=20),
        superseded_at=now - dt.timedelta(days=10),
    )
    store_grant("bob", ["github"], created_at=now - dt.timedelta(days=5))
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
    settings.COMPOSIO_API_KEY = SECRET_API_KEY
    store_grant("alice", ["github", "slack"], by=auditor)
    store_grant("bob", ["github"])
    store_grant("=cmd", ["slack"])
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
    rows = csv_rows(response)
    assert len(rows) - 1 == screen_rows > 0
    for row in rows[1:]:
        first = row[0].lstrip("'")
        assert first in section or first.replace("=", "") in section
    body = str(rows)
    assert "SENTINEL" not in body and "mcp.example.test" not in body and SECRET_API_KEY not in body
    assert "SENTINEL" not in html and "mcp.example.test" not in html
