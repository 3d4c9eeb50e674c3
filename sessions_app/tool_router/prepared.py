"""Read queries the ORM compiles once per shape and process, then runs with each call's values.

Building and compiling a QuerySet costs the support lookup and card several milliseconds of
Python a request, a few times what PostgreSQL spends answering them (docs/support.md, "Where a
lookup's time goes"). Their SQL depends on their shape (which kinds of match, how many words),
never on the values searched for. A `PreparedQuery` therefore asks its builder for the queryset
once per shape and database connection's vendor, with a placeholder for each value, and keeps
Django's compiler. Each call puts the real values where the placeholders reached the compiled
parameters, runs the SQL on the current thread's connection, and turns the rows into what the
queryset itself would have yielded, with Django's own converters: model instances with their
`select_related` objects and annotations, or dicts for a `values()` queryset.

Rules for a builder:

- It takes `shape` and the values by name, and uses each value as it is given: a value derived
  from another (its lower case, a range's upper bound) is passed as a value of its own.
- It may pass a value to the database as it is (`exact`, `in`, comparisons) or inside a LIKE
  pattern (`startswith`, `istartswith`, `icontains`, `iexact`, and constant text joined to it
  there), one value to a pattern.
- A value is a string, an integer or a UUID. A string may go unused (one database needs a
  range's upper bound, another does not); an integer or a UUID must reach the SQL.

Compiling refuses a builder whose SQL carries a placeholder changed in Python (lowered, uppered
or cut), joined to text outside a LIKE pattern, or sharing a pattern with another value, so
breaking these rules fails at once instead of answering with wrong rows.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import ModelIterable, ValuesIterable, get_related_populators

# Mixed case, so a builder that lowers or uppers a value is caught (see `_refuse_changed`); with
# an "_", which Django's LIKE escaping changes: a parameter holding the escaped token is a LIKE
# pattern (or SQLite's `iexact`), and gets the value escaped; one equal to the bare token gets it
# as it is.
_TOKEN = "QpRep{}_Zx"
# Positive and within a 32-bit column's range: Django leaves out a comparison with a value
# beyond a column's range (a negative one for a positive column).
_INT_BASE = 1_973_000_000
_UUID_BASE = 0x7E57_0000_0000_4000_8000_0000_0000_0000


def _placeholder(index: int, value: object) -> object:
    if isinstance(value, bool):
        raise TypeError("a flag changes the query's shape: pass it in `shape`, not as a value")
    if isinstance(value, str):
        return _TOKEN.format(index)
    if isinstance(value, int):
        return _INT_BASE + index
    if isinstance(value, UUID):
        return UUID(int=_UUID_BASE + index)
    raise TypeError(f"a prepared query's value is a str, int or UUID, not {type(value).__name__}")


@dataclass(frozen=True)
class _Slot:
    """Where one compiled parameter gets its value: `kind` is "as is", "hex" (a UUID as SQLite
    stores it) or "escaped" (LIKE-escaped where `token`, the escaped placeholder, stands in
    `template`: a pattern, or SQLite's `iexact`)."""

    name: str
    kind: str
    template: str = ""
    token: str = ""
    # The type Django gave the parameter when it differs from the value's (psycopg's Int8 for a
    # 64-bit column on PostgreSQL): the bound value gets it too.
    wrap: type | None = None


@dataclass(frozen=True)
class _Compiled:
    compiler: Any
    sql: str
    params: tuple[object, ...]
    slots: dict[int, _Slot]
    names: list[str] | None  # a values() queryset's keys; None for model instances
    fields: slice  # where a model instance's own columns lie in a row
    init_list: list[str]  # their attribute names
    populators: list[Any]  # the select_related objects' (Django's RelatedPopulator)


def _slot(
    param: object, placeholders: dict[str, object], escape: Callable[[str], str]
) -> _Slot | None:
    escaped_in: list[tuple[str, str]] = []
    for name, placeholder in placeholders.items():
        if isinstance(param, type(placeholder)) and param == placeholder:
            wrap = None if type(param) is type(placeholder) else type(param)
            return _Slot(name, "as is", wrap=wrap)
        if isinstance(placeholder, UUID) and param == placeholder.hex:
            return _Slot(name, "hex")
        if not (isinstance(placeholder, str) and isinstance(param, str)):
            continue
        escaped = escape(placeholder)
        if escaped in param:
            escaped_in.append((name, escaped))
        elif placeholder in param:
            raise ImproperlyConfigured(
                f"value {name!r} reached the SQL joined to other text outside a LIKE pattern; "
                "pass the joined text as a value of its own"
            )
    if not escaped_in:
        return None
    (name, escaped), *others = escaped_in
    if others or param.count(escaped) != 1:  # type: ignore[union-attr]
        raise ImproperlyConfigured(
            f"value {name!r} reached one SQL parameter with another value or twice; "
            "pass the joined text as a value of its own"
        )
    return _Slot(name, "escaped", template=param, token=escaped)  # type: ignore[arg-type]


def _refuse_changed(
    params: tuple[object, ...], placeholders: dict[str, object], escape: Callable[[str], str]
) -> None:
    for name, placeholder in placeholders.items():
        if not isinstance(placeholder, str):
            continue
        forms = (placeholder, escape(placeholder))
        changed = [f(form) for form in forms for f in (str.lower, str.upper, lambda t: t[:-1])]
        for param in params:
            if not isinstance(param, str) or any(form in param for form in forms):
                continue
            if any(form in param for form in changed):
                raise ImproperlyConfigured(
                    f"value {name!r} reached the SQL changed (lowered, uppered or cut); "
                    "pass the changed form as a value of its own"
                )


class PreparedQuery:
    """`build(shape, **values) -> QuerySet`, compiled once per shape; `run` returns its rows."""

    def __init__(self, build: Callable[..., QuerySet]) -> None:
        self._build = build
        self._compiled: dict[Hashable, _Compiled] = {}
        self._lock = threading.Lock()

    def run(self, shape: Hashable, *, using: str = "default", **values: object) -> list[Any]:
        connection = connections[using]
        key = (using, connection.vendor, shape, tuple(sorted(values)))
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key) or self._compile(shape, using, values)
                self._compiled[key] = compiled
        params = list(compiled.params)
        for position, slot in compiled.slots.items():
            value = values[slot.name]
            if slot.kind == "hex":
                params[position] = value.hex  # type: ignore[attr-defined]
            elif slot.kind == "escaped":
                escaped = connection.ops.prep_for_like_query(value)
                params[position] = slot.template.replace(slot.token, escaped)
            else:
                params[position] = value if slot.wrap is None else slot.wrap(value)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        compiler = copy.copy(compiled.compiler)
        compiler.connection = connection
        if compiler.has_extra_select:
            rows = [row[: compiler.col_count] for row in rows]
        rows = compiler.results_iter(results=[rows])
        if compiled.names is not None:
            names = compiled.names
            return [dict(zip(names, row, strict=True)) for row in rows]
        return [self._instance(compiled, compiler, row, using) for row in rows]

    def _compile(self, shape: Hashable, using: str, values: dict[str, object]) -> _Compiled:
        placeholders = {
            name: _placeholder(i, value) for i, (name, value) in enumerate(values.items())
        }
        queryset = self._build(shape, **placeholders)
        if queryset._iterable_class not in (ModelIterable, ValuesIterable):
            raise ImproperlyConfigured("a prepared query is a queryset of models or values() dicts")
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        params = tuple(params)
        escape = connections[using].ops.prep_for_like_query
        _refuse_changed(params, placeholders, escape)
        slots = {}
        for position, param in enumerate(params):
            slot = _slot(param, placeholders, escape)
            if slot is not None:
                slots[position] = slot
        # A string may go unused where one database needs it and another does not (a range's
        # upper bound); a number or a UUID that never reached the SQL was dropped or changed.
        used = {slot.name for slot in slots.values()}
        for name, placeholder in placeholders.items():
            if name not in used and not isinstance(placeholder, str):
                raise ImproperlyConfigured(f"value {name!r} did not reach the SQL as given")
        query = queryset.query
        if queryset._iterable_class is ValuesIterable:
            names = (
                list(query.selected)
                if query.selected
                else [*query.extra_select, *query.values_select, *query.annotation_select]
            )
            return _Compiled(compiler, sql, params, slots, names, slice(0), [], [])
        # What ModelIterable works out from the compiler before its first row.
        select_fields = compiler.klass_info["select_fields"]
        fields = slice(select_fields[0], select_fields[-1] + 1)
        init_list = [column[0].target.attname for column in compiler.select[fields]]
        populators = get_related_populators(compiler.klass_info, compiler.select, using)
        return _Compiled(compiler, sql, params, slots, None, fields, init_list, populators)

    @staticmethod
    def _instance(compiled: _Compiled, compiler: Any, row: Any, using: str) -> Any:
        """The model instance Django's ModelIterable makes of `row`."""
        instance = compiler.klass_info["model"].from_db(
            using, compiled.init_list, row[compiled.fields]
        )
        for populator in compiled.populators:
            populator.populate(row, instance)
        for name, position in compiler.annotation_col_map.items():
            setattr(instance, name, row[position])
        return instance
