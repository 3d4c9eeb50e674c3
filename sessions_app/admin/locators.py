"""Session ids in the admin, as the viewing staff user may see them (`tool_router.locators`).

An admin column or read-only field gets only the object, never the request, so each admin names
its columns that show a session id (or text that may name one) in `locator_columns`;
`LocatorColumnsMixin` swaps each of those names, in the list, the fields and the read-only
fields, for a column made for the request's user: the id in full for staff who may reveal MCP
URLs, `trs_…#<fingerprint>` for everyone else. The swapped columns are made once per request, so
the list and the form compare the same objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from sessions_app.access import Actor
from sessions_app.tool_router import locators


@dataclass(frozen=True)
class LocatorColumn:
    """A column that shows a session id: its heading and how to show it to a user."""

    description: str
    show: Callable[[Any, Actor], str]
    # Sorting by the raw id, offered only to staff who see it in full.
    ordering: str = ""


def session_id_of(attribute: str, *, short: bool = False) -> Callable[[Any, Actor], str]:
    """How to show the session id at `attribute` of an object ("session_id",
    "replaces.session_id"): blank when there is none."""

    def show(obj: Any, user: Actor) -> str:
        value: Any = obj
        for part in attribute.split("."):
            value = getattr(value, part, None) if value is not None else None
        return locators.locator(value, user, short=short) if value else "-"

    return show


def text_of(attribute: str, *ids: str) -> Callable[[Any, Actor], str]:
    """How to show free text at `attribute` that may name session ids (those at `ids` and any
    shaped like one)."""

    def show(obj: Any, user: Actor) -> str:
        known = [str(getattr(obj, name, "") or "") for name in ids]
        return locators.locators_in(str(getattr(obj, attribute, "") or ""), user, known)

    return show


def _make(name: str, spec: LocatorColumn, user: Actor) -> Callable[[Any], str]:
    def column(obj: Any) -> str:
        return spec.show(obj, user)

    column.__name__ = name
    column.short_description = spec.description  # type: ignore[attr-defined]
    if spec.ordering and locators.may_see_ids(user):
        column.admin_order_field = spec.ordering  # type: ignore[attr-defined]
    return column


def _columns(request: HttpRequest, owner: type, specs: dict[str, LocatorColumn]) -> dict[str, Any]:
    """The request's columns of one admin class (made on first use, then the same objects)."""
    made: dict[tuple[type, str], Any] = request.__dict__.setdefault("_locator_columns", {})
    user = getattr(request, "user", None)
    for name, spec in specs.items():
        if (owner, name) not in made:
            made[owner, name] = _make(name, spec, user)
    return {name: made[owner, name] for name in specs}


class LocatorColumnsMixin:
    """Swaps the names in `locator_columns` for the request's columns wherever the admin lists
    them: its list display, fields, fieldsets and read-only fields (inlines too)."""

    locator_columns: dict[str, LocatorColumn] = {}

    def _swap(self, request: HttpRequest, names: Sequence[Any]) -> list[Any]:
        columns = _columns(request, type(self), self.locator_columns)

        def swapped(name: Any) -> Any:
            if isinstance(name, str):
                return columns.get(name, name)
            if isinstance(name, (list, tuple)):  # several fields on one line of a fieldset
                return type(name)(swapped(n) for n in name)
            return name

        return [swapped(n) for n in names]

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return self._swap(request, super().get_list_display(request))  # type: ignore[misc]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self._swap(request, super().get_fields(request, obj))  # type: ignore[misc]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        return [
            (title, {**options, "fields": self._swap(request, options["fields"])})
            for title, options in fieldsets
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self._swap(request, super().get_readonly_fields(request, obj))  # type: ignore[misc]
