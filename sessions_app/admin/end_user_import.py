"""The end-user admin's CSV import: upload, preview the rows, then confirm (all or nothing)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import ngettext

from sessions_app import access
from sessions_app.admin.forms import EndUserImportForm
from sessions_app.tool_router import end_users


class EndUserImportMixin(admin.ModelAdmin):
    """Adds `import/` (`admin:sessions_app_enduser_import`) to the end-user admin."""

    def get_urls(self) -> list[Any]:
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="sessions_app_enduser_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """GET: the upload form. POST a file: its preview. POST `post=yes`: the import itself."""
        if not self.has_add_permission(request):
            raise access.refuse(
                operation="enduser.import",
                reason="Importing end users needs the add end user permission.",
                request=request,
                missing=["sessions_app.add_enduser"],
            )
        if request.method == "POST" and request.POST.get("post") == "yes":
            return self._import_confirmed(request)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Import end users from CSV",
            "opts": self.model._meta,
        }
        if request.method == "POST":
            form = EndUserImportForm(request.POST, request.FILES)
            if form.is_valid():
                context.update(self._import_preview(request, form))
        else:
            form = EndUserImportForm()
        context["form"] = form
        return TemplateResponse(request, "admin/sessions_app/enduser/import.html", context)

    def _import_preview(self, request: HttpRequest, form: EndUserImportForm) -> dict[str, Any]:
        """The preview's context, or nothing with the file's error added to `form`."""
        content = form.cleaned_data["csv_file"].read(settings.END_USER_IMPORT_MAX_BYTES + 1)
        staged = end_users.end_user_import_staged(
            content=content, actor=request.user, request=request
        )
        preview = staged.preview
        if preview.error:
            form.add_error("csv_file", preview.error + " Nothing was imported.")
            return {}
        return {"preview": preview, "token": staged.token, "first_valid": preview.valid[:20]}

    def _import_confirmed(self, request: HttpRequest) -> HttpResponse:
        preview, created = end_users.end_user_import_confirmed(
            token=request.POST.get("token", ""), actor=request.user, request=request
        )
        if preview.error:
            self.message_user(request, preview.error + " Nothing was imported.", messages.ERROR)
            return HttpResponseRedirect(request.path)
        self.message_user(
            request,
            _imported(created, len(preview.rejected)),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:sessions_app_enduser_changelist"))


def _imported(created: int, skipped: int) -> str:
    return ngettext("Imported %(n)d end user; ", "Imported %(n)d end users; ", created) % {
        "n": created
    } + ngettext("%(n)d row was skipped.", "%(n)d rows were skipped.", skipped) % {"n": skipped}
