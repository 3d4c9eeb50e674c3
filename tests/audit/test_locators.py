"""Locators on the auditor's pages and exports (issue 12): a session id rebuilds the MCP URL, so
the audit log, the access report (its point-in-time answer), the by-user and per-toolkit access
pages show it in full only to staff who may reveal MCP URLs (here the superuser), and masked
(`trs_…#<fingerprint>`) to the Auditor and to staff holding every other permission; every CSV
export is masked, whoever downloads it.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from sessions_app.tool_router import mcp_url
from tests.factories import client_for
from tests.helpers import csv_rows

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

NO_REVEAL = ("auditor", "no reveal")


def _pages() -> list[tuple[str, dict[str, str], tuple[str, ...]]]:
    """(URL, query, the sessions it names): each auditor page that shows session ids."""
    today = timezone.now().date().isoformat()
    return [
        (reverse("audit:events"), {}, ("old", "new")),
        (reverse("audit:access"), {"toolkit": "github", "on": today}, ("old", "new")),
        (reverse("audit:access_users"), {}, ("new",)),
        (reverse("audit:access_toolkit", args=["github"]), {}, ("new",)),
    ]


def _exports() -> list[tuple[str, dict[str, str], tuple[str, ...]]]:
    """(URL, query, the sessions it names): each CSV export of those pages."""
    today = timezone.now().date().isoformat()
    return [
        (reverse("audit:events"), {"export": "csv"}, ("old", "new")),
        (
            reverse("audit:access"),
            {"toolkit": "github", "on": today, "export": "point_in_time"},
            ("old", "new"),
        ),
        (reverse("audit:access_users"), {"export": "csv"}, ("new",)),
        (reverse("audit:access_toolkit", args=["github"]), {"export": "csv"}, ("new",)),
    ]


def assert_masked(body: str, session_id: str) -> None:
    """Neither the id nor its short form (nor its random tail) shows; its masked form does."""
    assert session_id not in body and session_id[4:12] not in body, session_id
    assert mcp_url.masked_id_text(session_id) in body, session_id


@pytest.mark.parametrize("viewer", [*NO_REVEAL, "superuser"])
# Not `page`: pytest-playwright's fixture of that name would make these browser tests.
@pytest.mark.parametrize("surface", range(4))
def test_auditor_pages_show_session_ids_in_full_only_to_staff_who_may_reveal(
    refreshed_world: dict[str, Any], viewer: str, surface: int
) -> None:
    url, query, named = _pages()[surface]

    response = client_for(refreshed_world["users"][viewer]).get(url, query)

    assert response.status_code == 200
    body = response.content.decode()
    for name in named:
        session_id = refreshed_world[name].session_id
        if viewer in NO_REVEAL:
            assert_masked(body, session_id)
        else:
            assert session_id in body and mcp_url.masked_id_text(session_id) not in body


def test_the_audit_log_masks_the_ids_an_events_reason_names(
    refreshed_world: dict[str, Any],
) -> None:
    old, new = refreshed_world["old"], refreshed_world["new"]

    response = client_for(refreshed_world["users"]["auditor"]).get(
        reverse("audit:events"), {"action": "session.refresh"}
    )

    body = response.content.decode()
    # "Replaced <old> with <new>." as the event's reason, both ids masked.
    expected = f"Replaced {mcp_url.masked_id_text(old.session_id)} with "
    assert expected + f"{mcp_url.masked_id_text(new.session_id)}." in body


@pytest.mark.parametrize("viewer", [*NO_REVEAL, "superuser"])
@pytest.mark.parametrize("export", range(4))
def test_every_audit_csv_export_is_masked_whoever_downloads_it(
    refreshed_world: dict[str, Any], viewer: str, export: int
) -> None:
    url, query, named = _exports()[export]

    response = client_for(refreshed_world["users"][viewer]).get(url, query)

    assert response["Content-Disposition"].startswith("attachment;")
    rows = csv_rows(response)
    assert len(rows) > 1
    body = "\n".join(",".join(row) for row in rows)
    for name in named:
        assert_masked(body, refreshed_world[name].session_id)


def test_the_event_export_masks_the_session_column_the_reason_and_the_details(
    refreshed_world: dict[str, Any],
) -> None:
    old, new = refreshed_world["old"], refreshed_world["new"]
    response = client_for(refreshed_world["users"]["auditor"]).get(
        reverse("audit:events"), {"action": "session.refresh", "export": "csv"}
    )

    header, *rows = csv_rows(response)
    (row,) = [r for r in rows if r[header.index("outcome")] == "success"]

    assert row[header.index("session")] == mcp_url.masked_id_text(new.session_id)
    assert mcp_url.masked_id_text(old.session_id) in row[header.index("reason")]
    assert f'"replaces": "{mcp_url.masked_id_text(old.session_id)}"' in row[header.index("details")]
