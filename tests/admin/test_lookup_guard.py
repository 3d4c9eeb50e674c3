"""Admin lookups: every changelist accepts only the lookups its own filters, date hierarchy and
search offer; any other answers 400 and writes one `access.refused` event.

Generated, not listed by hand: every ModelAdmin registered on the admin site (Django's own, axes'
and the task queue's included), every concrete field of its model probed with `__regex`,
`__startswith` and `__contains`, every forward relation probed through a field of the model it
points to, for each role that opens the list. Each parameter the admin's own list filters expect
(their `expected_parameters()`, with the values their choices offer) still answers 200.

Also: the MCP URL oracle of issue 12 (`?mcp_url__startswith=https` on the sessions list), and a
changelist POST naming two actions.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import Model
from django.test import Client, RequestFactory
from django.urls import reverse

from sessions_app.models import AuditEvent, EndUser
from tests.factories import client_for
from tests.helpers import fresh_refusal_windows

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

ROLES = ("support", "session admin", "auditor", "superuser")
PROBES = ("regex", "startswith", "contains")
# A value for each kind of parameter a list filter expects that its choices may not offer (an
# `__isnull` on a column that is never null, the bounds of a date filter).
SUFFIX_VALUES = {"__isnull": "True", "__gte": "2026-01-01", "__lt": "2026-01-02", "__exact": "1"}

REGISTERED: dict[str, admin.ModelAdmin] = {
    model._meta.label_lower: model_admin for model, model_admin in admin.site._registry.items()
}


def changelist(model: type[Model]) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def probes(model: type[Model]) -> Iterator[str]:
    """A lookup on every concrete field of `model`, and one across each of its relations."""
    for field in model._meta.concrete_fields:
        for probe in PROBES:
            yield f"{field.name}__{probe}"
    for field in [*model._meta.concrete_fields, *model._meta.many_to_many]:
        if field.is_relation and field.related_model is not None:
            target = field.related_model._meta
            other = next(f for f in target.concrete_fields if not f.primary_key)
            yield f"{field.name}__{other.name}__startswith"


def offered_queries(model_admin: admin.ModelAdmin, user: User) -> list[dict[str, str]]:
    """The query strings the admin's own filters offer `user`: every choice of every list filter,
    each expected parameter no choice names (with a value for its kind), the date hierarchy and
    the search box."""
    request = RequestFactory().get(changelist(model_admin.model))
    request.user = user
    cl = model_admin.get_changelist_instance(request)
    queries: list[dict[str, str]] = [{"q": "x"}]
    for spec in cl.filter_specs:
        named: set[str] = set()
        for choice in spec.choices(cl):
            query = dict(parse_qsl(choice["query_string"].lstrip("?")))
            named.update(query)
            if query:
                queries.append(query)
        for parameter in spec.expected_parameters():
            if parameter not in named:
                suffix = "__" + parameter.rsplit("__", 1)[-1]
                assert suffix in SUFFIX_VALUES, f"no valid value known for {parameter}"
                queries.append({parameter: SUFFIX_VALUES[suffix]})
    if model_admin.date_hierarchy:
        day = date.today()
        queries.append(
            {
                f"{model_admin.date_hierarchy}__{part}": str(getattr(day, part))
                for part in ("year", "month", "day")
            }
        )
    return queries


def events_since(sequence: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(sequence__gt=sequence).order_by("sequence"))


def assert_refused_once(client: Client, url: str, lookup: str, who: str) -> None:
    before = fresh_refusal_windows()
    response = client.get(url, {lookup: "x"})
    assert response.status_code == HTTPStatus.BAD_REQUEST, (who, url, lookup)
    events = events_since(before)
    assert [(e.action, e.outcome) for e in events] == [("access.refused", "refused")], (
        who,
        url,
        lookup,
    )
    assert events[0].details["operation"] == "admin.lookup"
    assert events[0].details["target"] == lookup


@pytest.fixture
def role_clients(access_world: dict[str, Any]) -> dict[str, tuple[User, Client]]:
    users = access_world["users"]
    return {role: (users[role], client_for(users[role])) for role in ROLES}


@pytest.mark.parametrize("label", sorted(REGISTERED))
def test_a_changelist_refuses_every_lookup_its_filters_do_not_offer(
    label: str, role_clients: dict[str, tuple[User, Client]]
) -> None:
    model_admin = REGISTERED[label]
    model = model_admin.model
    url = changelist(model)
    opened = 0
    for role, (user, client) in role_clients.items():
        if client.get(url).status_code != HTTPStatus.OK:
            # A role that may not open the list is refused the probe too (403, audited once).
            before = fresh_refusal_windows()
            assert client.get(url, {"pk__regex": "x"}).status_code == HTTPStatus.FORBIDDEN
            assert [e.action for e in events_since(before)] == ["access.refused"]
            continue
        opened += 1
        for query in offered_queries(model_admin, user):
            before = fresh_refusal_windows()
            response = client.get(url + "?" + urlencode(query))
            assert response.status_code == HTTPStatus.OK, (role, url, query)
            assert events_since(before) == [], (role, url, query)
        for lookup in probes(model):
            assert_refused_once(client, url, lookup, role)
    assert opened, f"no role opens {url}"  # the superuser always does


def test_the_mcp_url_is_no_oracle_on_the_sessions_list(
    role_clients: dict[str, tuple[User, Client]],
) -> None:
    url = reverse("admin:sessions_app_toolroutersession_changelist")
    for role in ("support", "auditor", "session admin"):
        _, client = role_clients[role]
        assert client.get(url).status_code == HTTPStatus.OK, role
        before = fresh_refusal_windows()

        response = client.get(url + "?mcp_url__startswith=https")

        assert response.status_code == HTTPStatus.BAD_REQUEST, role
        events = events_since(before)
        assert [(e.action, e.actor_username) for e in events] == [
            ("access.refused", role_clients[role][0].username)
        ]
        assert events[0].details["target"] == "mcp_url__startswith"


def test_a_refused_to_field_on_a_changelist_is_audited_once(
    role_clients: dict[str, tuple[User, Client]],
) -> None:
    _, client = role_clients["superuser"]
    before = fresh_refusal_windows()

    response = client.get(
        reverse("admin:sessions_app_toolroutersession_changelist"),
        {"_to_field": "mcp_url", "_popup": "1"},
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    events = events_since(before)
    assert [(e.action, e.details["operation"]) for e in events] == [
        ("access.refused", "admin.to_field")
    ]


@pytest.mark.parametrize(
    ("role", "url_name", "actions"),
    [
        ("support", "sessions_app_enduser", ["delete_sessions", "nothing"]),
        ("session admin", "sessions_app_enduser", ["refresh_sessions", "delete_sessions"]),
        ("superuser", "auth_user", ["delete_selected", "delete_selected"]),
    ],
)
def test_a_post_naming_two_actions_is_refused_and_audited_once(
    role: str,
    url_name: str,
    actions: list[str],
    role_clients: dict[str, tuple[User, Client]],
    access_world: dict[str, Any],
) -> None:
    _, client = role_clients[role]
    selected = access_world["ids"]["enduser" if url_name.endswith("enduser") else "user"]
    before = fresh_refusal_windows()
    users_before = (EndUser.objects.count(), User.objects.count())

    response = client.post(
        reverse(f"admin:{url_name}_changelist"),
        {"action": actions, "_selected_action": [selected], "index": "0", "post": "yes"},
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    events = events_since(before)
    assert [(e.action, e.details["operation"]) for e in events] == [
        ("access.refused", "admin.action")
    ]
    assert events[0].details["target"] == ", ".join(actions)
    assert (EndUser.objects.count(), User.objects.count()) == users_before


def test_a_raw_id_popup_keeps_the_lookup_its_limit_choices_to_sends(
    role_clients: dict[str, tuple[User, Client]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No model here limits a foreign key's choices; one that did would open its popup with the
    # limit as a lookup (Django's ForeignKeyRawIdWidget), and that exact lookup stays allowed.
    monkeypatch.setattr(EndUser._meta, "related_fkey_lookups", [{"external_id": "usr_access"}])
    _, client = role_clients["superuser"]
    url = reverse("admin:sessions_app_enduser_changelist")

    response = client.get(url, {"external_id": "usr_access", "_popup": "1", "_to_field": "id"})

    assert response.status_code == HTTPStatus.OK
    before = fresh_refusal_windows()
    assert client.get(url, {"external_id": "usr_other"}).status_code == HTTPStatus.BAD_REQUEST
    assert [e.details["target"] for e in events_since(before)] == ["external_id"]
