"""The staff user's row and permissions come from the shared cache, and any ORM change to them
(their groups, their permissions, a group's permissions, a group or permission deleted, the user
deactivated or given a new password) takes effect at their next request; raw SQL needs
`forget_permissions` (or PERMISSION_CACHE_SECONDS)."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sessions_app import roles
from tests.factories import HX, client_for

LOOKUP = reverse("sessions_app:support_lookup")


def _status(client: Client) -> int:
    return client.get(LOOKUP, {"q": "nobody"}, headers=HX).status_code


def _support_group() -> Group:
    return Group.objects.get(name=roles.SUPPORT)


def _reveal() -> Permission:
    return Permission.objects.get(codename="reveal_mcp_url")


def _warm(support_user: User) -> Client:
    client = client_for(support_user)
    assert _status(client) == HTTPStatus.OK
    # The second request reads the staff user's permissions from the cache only.
    with CaptureQueriesContext(connection) as queries:
        assert _status(client) == HTTPStatus.OK
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert '"auth_permission"' not in sql and '"auth_group"' not in sql
    return client


REVOCATIONS: dict[str, Callable[[User], None]] = {
    "user.groups.remove": lambda u: u.groups.remove(_support_group()),
    "user.groups.clear": lambda u: u.groups.clear(),
    "user.groups.set": lambda u: u.groups.set([]),
    "group.user_set.remove": lambda u: _support_group().user_set.remove(u),
    "group.user_set.clear": lambda u: _support_group().user_set.clear(),
    "group.permissions.remove": lambda u: _support_group().permissions.remove(_reveal()),
    "group.permissions.clear": lambda u: _support_group().permissions.clear(),
    "permission.group_set.remove": lambda u: _reveal().group_set.remove(_support_group()),
    "group deleted": lambda u: _support_group().delete(),
    "permission deleted": lambda u: _reveal().delete(),
}


@pytest.mark.django_db
@pytest.mark.parametrize("revoke", REVOCATIONS.values(), ids=REVOCATIONS.keys())
def test_a_role_revoked_through_the_orm_is_refused_at_the_next_request(
    support_user: User, revoke: Callable[[User], None]
) -> None:
    client = _warm(support_user)
    revoke(User.objects.get(pk=support_user.pk))
    assert _status(client) == HTTPStatus.FORBIDDEN


@pytest.mark.django_db
def test_a_direct_permission_granted_and_revoked_applies_at_the_next_request(
    support_user: User,
) -> None:
    support_user.groups.clear()
    client = client_for(support_user)
    assert _status(client) == HTTPStatus.FORBIDDEN
    perms = Permission.objects.filter(
        codename__in=[p.split(".")[1] for p in roles.ROLE_PERMISSIONS[roles.SUPPORT]]
    )
    support_user.user_permissions.add(*perms)
    assert _status(client) == HTTPStatus.OK
    _reveal().user_set.remove(support_user)  # from the permission's side
    assert _status(client) == HTTPStatus.FORBIDDEN


@pytest.mark.django_db
def test_a_deactivated_user_is_signed_out_at_the_next_request(support_user: User) -> None:
    client = _warm(support_user)
    support_user.is_active = False
    support_user.save(update_fields=["is_active"])
    response = client.get(LOOKUP, {"q": "x"})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_deactivation_and_a_lost_superuser_flag_apply_even_through_raw_updates(
    support_user: User,
) -> None:
    client = _warm(support_user)
    support_user.groups.clear()
    User.objects.filter(pk=support_user.pk).update(is_superuser=True)  # no signal
    assert _status(client) == HTTPStatus.OK  # as a superuser
    User.objects.filter(pk=support_user.pk).update(is_superuser=False)
    assert _status(client) == HTTPStatus.FORBIDDEN  # the superuser's entry no longer serves
    User.objects.filter(pk=support_user.pk).update(is_active=False)
    assert client.get(LOOKUP, {"q": "x"}).status_code == HTTPStatus.FOUND


@pytest.mark.django_db
def test_a_new_password_ends_the_other_sessions(support_user: User) -> None:
    client = _warm(support_user)
    support_user.set_password("a-new-long-password-42")
    support_user.save()
    assert client.get(LOOKUP, {"q": "x"}).status_code == HTTPStatus.FOUND


@pytest.mark.django_db
def test_logout_ends_the_session_in_the_cache_too(support_user: User) -> None:
    client = _warm(support_user)
    cookie = client.cookies["sessionid"].value
    client.post(reverse("logout"))
    replay = Client()
    replay.cookies["sessionid"] = cookie
    assert replay.get(LOOKUP, {"q": "x"}).status_code == HTTPStatus.FOUND


@pytest.mark.django_db
def test_raw_sql_needs_forget_permissions(support_user: User) -> None:
    client = _warm(support_user)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM auth_user_groups WHERE user_id = %s", [support_user.pk])
    # No signal saw it: the cached permissions still answer, until they are forgotten.
    assert _status(client) == HTTPStatus.OK
    call_command("forget_permissions", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert _status(client) == HTTPStatus.FORBIDDEN


@pytest.mark.django_db
def test_no_cache_when_its_lifetime_is_zero(support_user: User, settings) -> None:  # noqa: ANN001
    settings.PERMISSION_CACHE_SECONDS = 0
    client = client_for(support_user)
    assert _status(client) == HTTPStatus.OK
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM auth_user_groups WHERE user_id = %s", [support_user.pk])
    assert _status(client) == HTTPStatus.FORBIDDEN
