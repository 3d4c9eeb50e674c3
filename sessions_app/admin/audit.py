"""AuditEvent in the admin: read-only for Auditors, fast on a million rows.

The session an event names, and its reason and details, show as the viewing user may see them
(`admin.locators`): masked for Auditors, who may not reveal MCP URLs.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from sessions_app.access import Actor
from sessions_app.admin.locators import LocatorColumn, LocatorColumnsMixin, session_id_of
from sessions_app.admin.safety import ReadOnlyAdminMixin
from sessions_app.models import AuditEvent
from sessions_app.tool_router import locators


def _named(event: AuditEvent) -> list[str]:
    """The session ids the event names (its details only when loaded: the list defers them)."""
    details = None if "details" in event.get_deferred_fields() else event.details
    return locators.event_ids(event.session_ref, details)


def _reason(event: AuditEvent, user: Actor) -> str:
    return locators.locators_in(event.reason, user, _named(event))


def _details(event: AuditEvent, user: Actor) -> str:
    shown = locators.details_for(event.details, user, _named(event))
    return json.dumps(shown, sort_keys=True, ensure_ascii=False)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, LocatorColumnsMixin, admin.ModelAdmin):
    class Media:
        # Wide tables scroll inside their module; long ids wrap (issue 15).
        css = {"all": ["admin_console.css"]}

    locator_columns = {
        "session_ref": LocatorColumn("session ref", session_id_of("session_ref")),
        "reason": LocatorColumn("reason", _reason),
        "details": LocatorColumn("details", _details),
    }
    list_display = (
        "created_at",
        "sequence",
        "action",
        "outcome",
        "actor_username",
        "end_user_external_id",
        "session_ref",
        "reason",
    )
    list_filter = ("action", "outcome", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=actor_username", "=end_user_external_id", "=session_ref", "=request_id")
    date_hierarchy = None
    ordering = ("-sequence",)
    list_per_page = 50
    # A COUNT(*) over a million rows on every page is the slow part of a changelist.
    show_full_result_count = False
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    # Every field is shown read-only, and none is left to a form that would show it raw.
    fields = readonly_fields
    actions = None

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).defer("details")

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> Any:
        return super().get_search_results(request, queryset, search_term.strip())
