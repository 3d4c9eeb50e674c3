"""The admin's bulk job pages: the list, and each job's page with live progress (the console's
job page, inside the admin). For Session admins only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import ngettext

from sessions_app import access
from sessions_app.admin.safety import ReadOnlyAdminMixin
from sessions_app.bulk import jobs as bulk
from sessions_app.bulk import progress
from sessions_app.bulk.job_page import job_context
from sessions_app.models import BulkJob


@admin.register(BulkJob)
class BulkJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Background create/refresh jobs; the change page is the live job page (as in the console)."""

    list_display = ["created_at", "kind", "state", "total", "summary", "started_by_username"]
    list_filter = ["state", "kind"]
    search_fields = ["started_by_username"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bulk.may_see_jobs(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bulk.may_see_jobs(request.user)

    @admin.display(description="items")
    def summary(self, obj: BulkJob) -> str:
        counts = obj.counts if obj.ended else progress.item_counts(obj)
        return ", ".join(f"{n} {state}" for state, n in counts.items() if n)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        self._refuse_unless_allowed(request)
        job = BulkJob.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if job is None:
            raise Http404("No such bulk job.")
        context = {
            **self.admin_site.each_context(request),
            "title": f"{job.get_kind_display()} for "
            + ngettext("%(n)d end user", "%(n)d end users", job.total) % {"n": job.total},
            "opts": self.model._meta,
            **job_context(
                request, job, back_url=reverse("admin:sessions_app_bulkjob_change", args=[job.pk])
            ),
        }
        return TemplateResponse(request, "sessions_app/bulk/admin_job.html", context)

    def _refuse_unless_allowed(self, request: HttpRequest) -> None:
        if not bulk.may_see_jobs(request.user):
            raise access.refuse(
                operation="bulk.view",
                reason="Bulk jobs are for session admins.",
                request=request,
                missing=access.missing(request.user, bulk.SEE_JOBS_PERMISSIONS),
            )
