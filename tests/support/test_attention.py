"""The support page of users needing attention: it reads only what the sweep stored (never asks
Composio), the most recent problem first, paged as fragments and as whole pages, in a constant
number of queries; the support landing page counts them and links to it."""

from __future__ import annotations

import re
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from sessions_app.composio.emulator import Emulator
from sessions_app.models import AttentionState, EndUser
from sessions_app.tool_router import attention
from tests.factories import HX, client_for, make_end_user, make_end_users

pytestmark = pytest.mark.django_db

PAGE_URL = reverse("sessions_app:support_attention")


def troubles(users: list[EndUser]) -> None:
    """Store a problem for each user, the later in the list the more recent; every third is
    checked and fine (not listed)."""
    now = timezone.now()
    AttentionState.objects.bulk_create(
        AttentionState(
            end_user=user,
            reasons=[] if n % 3 == 2 else [{"kind": "account", "text": f"github: problem {n}."}],
            problem_at=None if n % 3 == 2 else now - timedelta(minutes=len(users) - n),
            checked_at=now,
        )
        for n, user in enumerate(users)
    )


def listed(html: str) -> list[str]:
    return re.findall(r'<a class="id" href="/support/users/[^"]+/">([^<]+)</a>', html)


def test_the_page_lists_problems_newest_first_and_pages_without_asking_composio(
    emulator: Emulator, support_user: User
) -> None:
    users = make_end_users(90, prefix="usr_att")
    troubles(users)  # 60 with a problem
    client = client_for(support_user)
    asked = emulator.count()

    first = client.get(PAGE_URL)
    second = client.get(PAGE_URL + "?page=2", headers=HX)
    past_the_end = client.get(PAGE_URL + "?page=99")

    assert emulator.count() == asked  # never a request to Composio
    assert first.status_code == second.status_code == HTTPStatus.OK
    html = first.content.decode()
    assert "60 users need attention. Page 1 of 2." in html
    expected = [u.external_id for n, u in enumerate(users) if n % 3 != 2][::-1]
    assert listed(html) == expected[: attention.PAGE_SIZE]
    assert "github: problem 88." in html  # the reason in words
    assert f'href="/support/users/{users[88].public_id}/"' in html
    # Without JavaScript the pager's links are plain links; with HTMX they swap the list.
    assert f'href="{PAGE_URL}?page=2" hx-get="{PAGE_URL}?page=2" hx-target="#attention"' in html
    fragment = second.content.decode()
    assert "<html" not in fragment and second["Vary"].count("HX-Request")
    assert listed(fragment) == expected[attention.PAGE_SIZE :]
    assert listed(past_the_end.content.decode()) == listed(fragment)  # the last page


def test_the_page_costs_the_same_queries_whatever_the_rows(support_user: User) -> None:
    client = client_for(support_user)
    client.get(PAGE_URL)  # warm: session, permissions

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(PAGE_URL, headers=HX).status_code == HTTPStatus.OK
        return len(captured)

    troubles([make_end_user("usr_one")])
    one = queries()
    troubles(make_end_users(120, prefix="usr_many"))
    many = queries()

    assert many == one
    with CaptureQueriesContext(connection) as captured:
        page = attention.attention_page(1)
        assert [s.end_user.external_id for s in page]  # the rows, their users included
    assert len(captured) == 2  # the count and the rows


def test_the_landing_page_counts_the_users_needing_attention_and_links_to_them(
    support_user: User,
) -> None:
    client = client_for(support_user)
    lookup = reverse("sessions_app:support_lookup")
    assert "Users needing attention</a>: none right now." in client.get(lookup).content.decode()

    troubles(make_end_users(3, prefix="usr_land"))  # two with a problem

    html = client.get(lookup).content.decode()
    assert f'<a href="{PAGE_URL}">2 users need attention</a>' in html
    # The lookup's results fragment (each keystroke) does not count.
    assert "need attention" not in client.get(lookup + "?q=usr", headers=HX).content.decode()
