"""Locators on the bulk job pages (issue 12): an item's session, and a session id its error names,
show in full only to staff who may reveal MCP URLs; the failures CSV leaves the console, so a
session id in it is masked whoever downloads it."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.http import HttpResponse
from django.urls import reverse

from sessions_app.models import BulkJobItem
from sessions_app.tool_router import mcp_url
from tests.factories import client_for
from tests.helpers import csv_rows

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


@pytest.fixture
def failed_session_id(refreshed_world: dict[str, Any]) -> str:
    """The world's job item failed with an error naming its session; that session's id."""
    session_id = refreshed_world["old"].session_id
    BulkJobItem.objects.filter(job_id=refreshed_world["ids"]["bulkjob"]).update(
        state=BulkJobItem.State.FAILED,
        last_error=f"Composio created session {session_id} for usr_access, but storing failed.",
    )
    return session_id


ROLES = ["no reveal", "session admin", "superuser"]


def job_page(world: dict[str, Any], name: str, role: str) -> HttpResponse:
    url = reverse(f"bulk:{name}", args=[world["ids"]["job_uuid"]])
    return client_for(world["users"][role]).get(url)


@pytest.mark.parametrize("role", ROLES)
def test_the_job_page_names_sessions_as_the_user_may_see_them(
    refreshed_world: dict[str, Any], failed_session_id: str, role: str
) -> None:
    session_id = failed_session_id

    response = job_page(refreshed_world, "job_detail", role)

    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    if role == "no reveal":
        assert session_id not in body and session_id[4:12] not in body
        assert body.count(mcp_url.masked_id_text(session_id)) == 2  # its column and its error
    else:
        assert session_id[:12] in body and f"session {session_id} for usr_access" in body


@pytest.mark.parametrize("role", ROLES)
def test_the_failures_csv_masks_session_ids_whoever_downloads_it(
    refreshed_world: dict[str, Any], failed_session_id: str, role: str
) -> None:
    session_id = failed_session_id

    rows = csv_rows(job_page(refreshed_world, "job_failures", role))

    (row,) = rows[1:]
    assert row[0] == "usr_access" and session_id not in str(rows)
    assert f"session {mcp_url.masked_id_text(session_id)} for usr_access" in row[3]
