"""Locators on the bulk job pages (issue 12): an item's session, and a session id its error names,
show in full only to staff who may reveal MCP URLs; the failures CSV leaves the console, so a
session id in it is masked whoever downloads it."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.urls import reverse

from sessions_app.models import BulkJobItem
from sessions_app.tool_router import mcp_url
from tests.factories import client_for
from tests.helpers import csv_rows

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def _fail_the_item(world: dict[str, Any]) -> str:
    """The world's job item failed with an error naming its session; that session's id."""
    session_id = world["old"].session_id
    BulkJobItem.objects.filter(job_id=world["ids"]["bulkjob"]).update(
        state=BulkJobItem.State.FAILED,
        last_error=f"Composio created session {session_id} for usr_access, but storing failed.",
    )
    return session_id


@pytest.mark.parametrize("role", ["no reveal", "session admin", "superuser"])
def test_the_job_page_names_sessions_as_the_user_may_see_them(
    refreshed_world: dict[str, Any], role: str
) -> None:
    session_id = _fail_the_item(refreshed_world)
    url = reverse("bulk:job_detail", args=[refreshed_world["ids"]["job_uuid"]])

    response = client_for(refreshed_world["users"][role]).get(url)

    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    if role == "no reveal":
        assert session_id not in body and session_id[4:12] not in body
        assert body.count(mcp_url.masked_id_text(session_id)) == 2  # its column and its error
    else:
        assert session_id[:12] in body and f"session {session_id} for usr_access" in body


@pytest.mark.parametrize("role", ["no reveal", "session admin", "superuser"])
def test_the_failures_csv_masks_session_ids_whoever_downloads_it(
    refreshed_world: dict[str, Any], role: str
) -> None:
    session_id = _fail_the_item(refreshed_world)
    url = reverse("bulk:job_failures", args=[refreshed_world["ids"]["job_uuid"]])

    rows = csv_rows(client_for(refreshed_world["users"][role]).get(url))

    (row,) = rows[1:]
    assert row[0] == "usr_access" and session_id not in str(rows)
    assert f"session {mcp_url.masked_id_text(session_id)} for usr_access" in row[3]
