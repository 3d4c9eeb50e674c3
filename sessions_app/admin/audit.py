"""AuditEvent in the admin: read-only for Auditors, fast on a million rows."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from sessions_app import access
from sessions_app.admin.safety import ReadOnlyAdminMixin
from sessions_app.models import AuditEvent

VIEW_PERMISSION = "sessions_app.view_auditevent"


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

    def _refuse_unless_viewer(self, request: HttpRequest) -> None:
        """Raise `Refused` (audited once; handler403 renders the console's refusal page) unless
        the admin would let `request.user` view the audit log."""
        if not self.has_view_permission(request):
            raise access.refuse(
                operation="admin.view_auditevent",
                reason="No permission to view the audit log in the admin.",
                request=request,
                missing=[VIEW_PERMISSION],
            )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._refuse_unless_viewer(request)
        return super().changelist_view(request, extra_context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        self._refuse_unless_viewer(request)
        return super().change_view(request, object_id, form_url, extra_context)
