"""AuditEvent in the admin: read-only for Auditors, fast on a million rows."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from sessions_app.admin.safety import ReadOnlyAdminMixin
from sessions_app.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
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
    actions = None

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).defer("details")

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> Any:
        return super().get_search_results(request, queryset, search_term.strip())
