"""The job pages (console and admin) link each end user, and the session made for them as its
short id, to the user's support card."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from sessions_app.composio.emulator import Emulator
from sessions_app.models import BulkJob, EndUser
from sessions_app.tool_router.mcp_url import short_id
from tests.factories import client_for, make_end_users, start_bulk_job

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_bulk")]


@pytest.fixture
def done_job(catalog: Emulator, session_admin: User, immediate: None) -> BulkJob:
    make_end_users(2, prefix="jl", digits=2)
    return start_bulk_job("create", ["github"], session_admin)


@pytest.mark.parametrize("job_page", ["console", "admin"])
def test_the_job_page_links_users_and_their_short_session_ids_to_the_cards(
    done_job: BulkJob, session_admin: User, job_page: str
) -> None:
    url = (
        reverse("bulk:job_detail", kwargs={"public_id": done_job.public_id})
        if job_page == "console"
        else reverse("admin:sessions_app_bulkjob_change", args=[done_job.pk])
    )
    response = client_for(session_admin).get(url)
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    for item in done_job.items.select_related("end_user", "session"):
        card = reverse("sessions_app:support_user_card", args=[item.end_user.public_id])
        assert f'<a href="{card}"><code>{item.end_user.external_id}</code></a>' in html
        assert f'<a href="{card}"><code>{short_id(item.session.session_id)}</code></a>' in html


def test_the_job_page_refuses_other_roles_and_anonymous(
    done_job: BulkJob, support_user: User, auditor: User
) -> None:
    url = reverse("bulk:job_detail", kwargs={"public_id": done_job.public_id})
    assert client_for(support_user).get(url).status_code == HTTPStatus.FORBIDDEN
    assert client_for(auditor).get(url).status_code == HTTPStatus.FORBIDDEN
    assert client_for(None).get(url).status_code == HTTPStatus.FOUND


def test_a_superuser_sees_the_links_too(done_job: BulkJob) -> None:
    root = User.objects.create_superuser("root_jobs", password="x")
    html = (
        client_for(root)
        .get(reverse("bulk:job_detail", kwargs={"public_id": done_job.public_id}))
        .content.decode()
    )
    user: EndUser = done_job.items.first().end_user
    assert reverse("sessions_app:support_user_card", args=[user.public_id]) in html
