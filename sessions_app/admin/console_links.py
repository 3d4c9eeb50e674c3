"""The admin pages of an end user and of a session link back to the user's support card, for
staff who may open it (`navigation.card_url`); the link sits with the page's object tools
(`templates/admin/sessions_app/change_form.html`)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from sessions_app import navigation
from sessions_app.models import EndUser


class CardLinkMixin(admin.ModelAdmin):
    """Puts `card_url` (the support card of the object's end user, or "") on the change page."""

    def end_user_of(self, obj: Any) -> EndUser | None:
        """The end user whose card the object's page links to (the object itself by default)."""
        return obj

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        end_user = self.end_user_of(obj) if obj is not None else None
        context["card_url"] = navigation.card_url(request.user, end_user) if end_user else ""
        return super().render_change_form(request, context, add, change, form_url, obj)
