"""Admin guards shared by every ModelAdmin: read-only admins, and safe action selections.

Admin actions refuse a selection that names no object instead of failing with a 500.

Django's `response_action` filters `pk__in` with the raw posted `_selected_action` values; one the
primary key cannot parse ("abc", "1.5") raises, and int() quietly reads look-alikes ("１"). Every
registered ModelAdmin, Django's own included, checks the values first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseRedirect


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


def guard_admin_actions(site: admin.AdminSite = admin.site) -> None:
    for model_admin in site._registry.values():
        if not getattr(model_admin, "_selection_guarded", False):
            model_admin.response_action = _guarded(model_admin, model_admin.response_action)
            model_admin._selection_guarded = True


class ReadOnlyAdminMixin:
    """No add, change or delete through the admin: these records change only through services."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
