"""Prepared queries: compiled once per shape, and the same rows as the ORM's for any values."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import Lower

from sessions_app.models import EndUser, ToolRouterSession
from sessions_app.tool_router.prepared import PreparedQuery
from tests.factories import make_end_user, store_session

# What support may type that means something to SQL or to LIKE, or is not ASCII.
AWKWARD = ["50%", "a_b", "a\\b", "it's", "Ümit", "%", "_", "\\", "x%_\\y", "Ada", "ada", " a"]


@pytest.fixture
def awkward_users(db: None) -> list[EndUser]:
    users = [
        make_end_user(f"id{i}{value}", f"Name {value}end", f"{value}@example.com".lower())
        for i, value in enumerate(AWKWARD)
    ]
    users += [make_end_user("id_plain", "Ada Lovelace"), make_end_user("idXplain", "Alan")]
    store_session(users[0], "trs_awkward_a")
    store_session(users[0], "trs_awkward_old", status="superseded")
    return users


def _matching(shape: int, *, prefix: str, word: str, email: str) -> QuerySet[EndUser]:
    return (
        EndUser.objects.annotate(email_lower=Lower("email"), sessions_n=Count("sessions"))
        .filter(
            Q(external_id__startswith=prefix)
            | Q(display_name__icontains=f" {word}")
            | Q(email_lower__istartswith=email)
            | Q(external_id=prefix)
        )
        .order_by("pk")[:shape]
    )


def test_a_prepared_query_finds_what_the_orm_finds_whatever_the_values(
    awkward_users: list[EndUser],
) -> None:
    prepared = PreparedQuery(_matching)
    for value in [*AWKWARD, "id", "id_", "idX", "id1a_", "name"]:
        values = {"prefix": value, "word": value, "email": value.lower()}
        expected = [(u.pk, u.sessions_n) for u in _matching(50, **values)]
        got = prepared.run(50, **values)
        assert [(u.pk, u.sessions_n) for u in got] == expected, value
        assert all(isinstance(u, EndUser) and u.external_id for u in got)
    # LIKE's wildcards are matched as themselves, never as wildcards.
    assert [u.external_id for u in prepared.run(50, prefix="id_", word="zz", email="zz")] == [
        "id_plain"
    ]


def test_an_exact_match_in_any_case_takes_wildcards_as_themselves(db: None) -> None:
    """`iexact` is a LIKE on SQLite (the value escaped there) and `UPPER() = UPPER()` elsewhere."""
    make_end_user("a_b")
    make_end_user("axb")
    make_end_user("A%B")
    prepared = PreparedQuery(lambda shape, *, q: EndUser.objects.filter(external_id__iexact=q))
    for value, expected in (("A_B", ["a_b"]), ("a%b", ["A%B"]), ("AXB", ["axb"])):
        assert [u.external_id for u in prepared.run(1, q=value)] == expected


def test_it_compiles_once_per_shape_and_runs_new_values(awkward_users: list[EndUser]) -> None:
    calls: list[int] = []

    def build(shape: int, *, prefix: str, word: str, email: str) -> QuerySet[EndUser]:
        calls.append(shape)
        return _matching(shape, prefix=prefix, word=word, email=email)

    prepared = PreparedQuery(build)
    first = prepared.run(50, prefix="id0", word="zz", email="zz")
    second = prepared.run(50, prefix="id1a", word="zz", email="zz")
    assert [u.external_id for u in first] == ["id050%"]
    assert [u.external_id for u in second] == ["id1a_b"]
    assert len(prepared.run(1, prefix="id", word="zz", email="zz")) == 1
    assert calls == [50, 1]


def test_values_select_related_uuids_and_integers_come_back_as_the_orm_gives_them(
    awkward_users: list[EndUser],
) -> None:
    owner = awkward_users[0]

    def sessions(shape: str, *, public_id: UUID, pk: int) -> QuerySet:
        found = ToolRouterSession.objects.filter(Q(end_user__public_id=public_id) | Q(pk=pk))
        if shape == "values":
            return found.order_by("pk").values(
                "session_id", "created_at", user=F("end_user__external_id")
            )
        return found.select_related("end_user").order_by("pk")

    prepared = PreparedQuery(sessions)
    as_values = prepared.run("values", public_id=owner.public_id, pk=-1)
    assert as_values == list(sessions("values", public_id=owner.public_id, pk=-1))
    assert [row["session_id"] for row in as_values] == ["trs_awkward_a", "trs_awkward_old"]
    assert as_values[0]["created_at"].tzinfo is not None  # Django's converters ran

    [other] = prepared.run("models", public_id=uuid4(), pk=as_values and owner.sessions.first().pk)
    assert other.end_user.external_id == owner.external_id  # the select_related object
    assert prepared.run("models", public_id=uuid4(), pk=-1) == []


def test_a_builder_that_changes_a_value_in_python_is_refused(db: None) -> None:
    lowered = PreparedQuery(lambda shape, *, q: EndUser.objects.filter(email__startswith=q.lower()))
    with pytest.raises(ImproperlyConfigured, match="changed"):
        lowered.run(1, q="Ada")
    cut = PreparedQuery(lambda shape, *, q: EndUser.objects.filter(external_id__lt=q[:-1] + "~"))
    with pytest.raises(ImproperlyConfigured, match="changed"):
        cut.run(1, q="ada")
    joined = PreparedQuery(lambda shape, *, q: EndUser.objects.filter(external_id=f"usr_{q}"))
    with pytest.raises(ImproperlyConfigured, match="joined"):
        joined.run(1, q="ada")
    two = PreparedQuery(
        lambda shape, *, a, b: EndUser.objects.filter(display_name__icontains=f"{a} {b}")
    )
    with pytest.raises(ImproperlyConfigured, match="another value"):
        two.run(1, a="Ada", b="Lovelace")
    halved = PreparedQuery(lambda shape, *, n: EndUser.objects.filter(pk__lt=n // 2))
    with pytest.raises(ImproperlyConfigured, match="did not reach"):
        halved.run(1, n=10)
    with pytest.raises(TypeError, match="shape"):
        PreparedQuery(lambda shape, *, flag: EndUser.objects.all()).run(1, flag=True)
