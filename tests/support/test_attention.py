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
    expected = [u.external_id for n, u in enumerate(users) if n % 3 != 2][::-1]
    client = client_for(support_user)
    asked = emulator.count()

    first = client.get(PAGE_URL)
    html = first.content.decode()
    assert first.status_code == HTTPStatus.OK
    assert "60 users need attention." in html
    assert listed(html) == expected[: attention.PAGE_SIZE]
    assert "github: problem 88." in html  # the reason in words
    assert f'href="/support/users/{users[88].public_id}/"' in html
    # Without JavaScript the pager's links are plain links; with HTMX they swap the list.
    older = re.search(r'href="(/support/attention/\?after=[0-9]+-[0-9]+)" hx-get="\1"', html)
    assert older is not None and 'hx-target="#attention"' in html
    assert ">Newer<" not in html

    second = client.get(older.group(1), headers=HX)
    fragment = second.content.decode()
    assert "<html" not in fragment and "HX-Request" in second["Vary"]
    assert listed(fragment) == expected[attention.PAGE_SIZE :]
    assert ">Older<" not in fragment
    newer = re.search(r'href="(/support/attention/\?before=[0-9]+-[0-9]+)"', fragment)
    assert newer is not None
    assert listed(client.get(newer.group(1)).content.decode()) == expected[: attention.PAGE_SIZE]
    oldest = client.get(PAGE_URL + "?oldest=1").content.decode()
    assert listed(oldest) == expected[-attention.PAGE_SIZE :]
    assert listed(client.get(PAGE_URL + "?after=junk").content.decode()) == listed(html)

    assert emulator.count() == asked  # never a request to Composio


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
        page = attention.attention_page(oldest=True)
        assert [s.end_user.external_id for s in page.rows]  # the rows, their users included
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
