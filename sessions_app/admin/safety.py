"""Admin guards shared by every ModelAdmin: read-only admins, safe action selections, the lookups
a changelist accepts, and one action per posted form.

`guard_admins` wraps every registered ModelAdmin, Django's own included:

- Admin actions refuse a selection that names no object instead of failing with a 500.
  Django's `response_action` filters `pk__in` with the raw posted `_selected_action` values; one
  the primary key cannot parse ("abc", "1.5") raises, and int() quietly reads look-alikes ("１").
- A changelist accepts only the lookups its own list filters and date hierarchy take (and the
  admin's non-lookup parameters: `q`, `o`, `p`, `e`, `all`, `_popup`, `_to_field`, `_facets`,
  `_changelist_filters`). Django lets any lookup on a local field through to the query, so
  `?mcp_url__startswith=https` told a match from a miss: an oracle for a value the list masks.
  Any other lookup answers 400 and writes one `access.refused` event.
- A changelist's search (`?q=`) matches a locator (a session id, an MCP URL: the fields in
  `tool_router.locators.LOCATOR_FIELDS`, directly or across a relation) by its whole value only,
  for staff who may not see it in full. A substring search would tell a match from a miss one
  character at a time and rebuild an id those staff see masked; an exact one only confirms an
  id they already hold. Staff who may reveal MCP URLs keep the admin's own search.
- A posted changelist form names one action per action bar. Django runs the first `action`
  value while the console's hidden-action check read the last, so a second value slipped an
  action past the refusal's audit; more values than bars answer 400, audited once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers, widgets
from django.contrib.admin.exceptions import DisallowedModelAdminLookup, DisallowedModelAdminToField
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, SuspiciousOperation, ValidationError
from django.db.models import Model
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from sessions_app import access
from sessions_app.tool_router import locators

# Parameters a changelist reads that are no lookup (Django ignores the others it reads itself
# before the filters see them); left to Django, which treats it as it always did.
NOT_LOOKUPS = frozenset({"_changelist_filters"})


def _guarded(model_admin: admin.ModelAdmin, original: Callable[..., Any]) -> Callable[..., Any]:
    pk = model_admin.model._meta.pk

    def response_action(request: HttpRequest, queryset: Any) -> Any:
        try:
            for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                # Checkboxes post str(pk) exactly; anything else (look-alike digits, "01") is not
                # one of them, even where int() would accept it.
                parsed = pk.to_python(value)
                if parsed is None or str(parsed) != value:
                    raise ValidationError("not a primary key")
        except (ValidationError, ValueError, TypeError):
            model_admin.message_user(
                request,
                "The selection names no valid object; nothing was done.",
                messages.ERROR,
            )
            return HttpResponseRedirect(request.get_full_path())
        return original(request, queryset)

    return response_action


def _refuse_parameters(
    request: HttpRequest | None, model_admin: admin.ModelAdmin, operation: str, names: Sequence[str]
) -> None:
    """Audit one `access.refused` event for parameters a changelist does not offer."""
    named = ", ".join(names)
    access.refuse(
        operation=operation,
        reason=f"The {model_admin.model._meta.label} list does not offer {named}.",
        request=request,
        target=named[:200],
    )


def _audited_lookup_allowed(
    model_admin: admin.ModelAdmin, original: Callable[..., bool]
) -> Callable[..., bool]:
    """Django's own check, which runs before the filters (it refuses a lookup across a relation
    no filter names); a refusal is audited, and Django answers 400."""

    def lookup_allowed(lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if original(lookup, value, request):
            return True
        _refuse_parameters(request, model_admin, "admin.lookup", [lookup])
        return False

    return lookup_allowed


def _popup_lookups(model_admin: admin.ModelAdmin) -> set[tuple[str, str]]:
    """The (lookup, value) pairs a raw-id popup sends for a `limit_choices_to` pointing here."""
    pairs: set[tuple[str, str]] = set()
    for fk_lookup in model_admin.model._meta.related_fkey_lookups:
        limits = fk_lookup() if callable(fk_lookup) else fk_lookup
        pairs.update(widgets.url_params_from_lookup_dict(limits).items())
    return pairs


class GuardedChangeList(ChangeList):
    """A changelist that refuses (400, audited) every lookup its filters did not take."""

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(request, *args, **kwargs)
        except DisallowedModelAdminToField:
            # Django refuses this before it reads the lookups: the refusal is audited all the same.
            to_field = request.GET.get("_to_field", "")
            _refuse_parameters(request, self.model_admin, "admin.to_field", [to_field])
            raise

    def get_filters(self, request: HttpRequest) -> Any:
        sent: Mapping[str, list[str]] = self.get_filters_params()
        result = super().get_filters(request)
        # What the list filters and the date hierarchy took is gone from the remaining lookups;
        # the date hierarchy's own bounds were not sent, so they are not counted.
        remaining = result[2]
        popups = _popup_lookups(self.model_admin)
        stray = sorted(
            key
            for key in remaining
            if key in sent
            and key not in NOT_LOOKUPS
            and not all((key, value) in popups for value in sent[key])
        )
        if stray:
            _refuse_parameters(request, self.model_admin, "admin.lookup", stray)
            raise DisallowedModelAdminLookup(f"Filtering by {', '.join(stray)} not allowed")
        return result


_GUARDED_CLASSES: dict[type[ChangeList], type[ChangeList]] = {}


def _guarded_changelist(original: Callable[..., type[ChangeList]]) -> Callable[..., Any]:
    """`get_changelist`, answering the guarded form of whichever ChangeList the admin uses."""

    def get_changelist(request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        cls = original(request, **kwargs)
        if issubclass(cls, GuardedChangeList):
            return cls
        if cls not in _GUARDED_CLASSES:
            _GUARDED_CLASSES[cls] = type(f"Guarded{cls.__name__}", (GuardedChangeList, cls), {})
        return _GUARDED_CLASSES[cls]

    return get_changelist


def _locator_path(model: type[Model], search_field: str) -> str | None:
    """The path of the locator field a search field searches (None if it searches none)."""
    parts = search_field.lstrip("^=@").split(LOOKUP_SEP)
    opts = model._meta
    for index, part in enumerate(parts):
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:
            return None
        if field.is_relation and field.related_model is not None:
            opts = field.related_model._meta
            continue
        if (opts.label_lower, field.name) in locators.LOCATOR_FIELDS:
            return LOOKUP_SEP.join(parts[: index + 1])
        return None
    return None


def _exact_locator_search(
    model_admin: admin.ModelAdmin, original: Callable[..., Sequence[str]]
) -> Callable[..., Sequence[str]]:
    """`get_search_fields`, searching each locator field by its whole value (`=`) for staff who
    may not see session ids in full."""

    def get_search_fields(request: HttpRequest) -> Sequence[str]:
        fields = original(request)
        if locators.may_see_ids(getattr(request, "user", None)):
            return fields
        exact = []
        for name in fields:
            path = _locator_path(model_admin.model, name)
            exact.append(name if path is None else "=" + path)
        return exact

    return get_search_fields


def _one_action(model_admin: admin.ModelAdmin, original: Callable[..., Any]) -> Callable[..., Any]:
    """`changelist_view`, refusing first (before any action check reads one of them) a POST that
    names more actions than the page has action bars."""
    bars = max(1, int(model_admin.actions_on_top) + int(model_admin.actions_on_bottom))

    def changelist_view(
        request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        posted = request.POST.getlist("action") if request.method == "POST" else []
        if len(posted) > bars:
            access.refuse(
                operation="admin.action",
                reason=f"{len(posted)} actions posted to the "
                f"{model_admin.model._meta.label} list at once.",
                request=request,
                target=", ".join(posted)[:200],
            )
            raise SuspiciousOperation("More than one admin action posted.")
        return original(request, extra_context)

    return changelist_view


def guard_admins(site: admin.AdminSite = admin.site) -> None:
    """Wrap every ModelAdmin registered on `site` in the guards above (once each).

    Run from `AppConfig.ready`, before the admin's URLs are built: they bind `changelist_view`.
    """
    for model_admin in site._registry.values():
        if getattr(model_admin, "_console_guarded", False):
            continue
        model_admin.response_action = _guarded(model_admin, model_admin.response_action)
        model_admin.lookup_allowed = _audited_lookup_allowed(
            model_admin, model_admin.lookup_allowed
        )
        model_admin.get_changelist = _guarded_changelist(model_admin.get_changelist)
        model_admin.changelist_view = _one_action(model_admin, model_admin.changelist_view)
        model_admin.get_search_fields = _exact_locator_search(
            model_admin, model_admin.get_search_fields
        )
        model_admin._console_guarded = True


class ReadOnlyAdminMixin:
    """No add, change or delete through the admin: these records change only through services."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
