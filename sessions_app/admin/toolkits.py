"""Toolkits in the admin: the mirror of Composio's catalog, the allow-list and the catalog sync.

Allowing, disallowing and syncing are services (`tool_router.allowlist`, `services`); this module
only shows what they did.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from sessions_app import access
from sessions_app.admin.actions import GuardedActionsMixin
from sessions_app.admin.safety import ReadOnlyAdminMixin
from sessions_app.models import Toolkit, ToolRouterSession
from sessions_app.tool_router import errors, toolkit_catalog
from sessions_app.tool_router.allowlist import (
    ALLOWLIST_PERMISSION,
    AllowlistResult,
    toolkit_allowlist_set,
)

SYNC_PERMISSION = "sessions_app.sync_toolkit_catalog"


class UsedByActiveSessionsFilter(admin.SimpleListFilter):
    title = "used by active sessions"
    parameter_name = "used"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("yes", "Used by active sessions"),
            ("stale", "Not in the catalog but still used"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() == "yes":
            return queryset.filter(active_sessions__gt=0)
        if self.value() == "stale":
            return queryset.filter(active_sessions__gt=0, in_catalog=False)
        return None


@admin.register(Toolkit)
class ToolkitAdmin(ReadOnlyAdminMixin, GuardedActionsMixin):
    """The catalog mirror and the allow-list. Allowing and disallowing are audited actions."""

    list_display = [
        "slug",
        "name",
        "category_list",
        "is_allowed",
        "catalog_state",
        "active_session_count",
        "last_synced_at",
    ]
    list_filter = ["is_allowed", "in_catalog", UsedByActiveSessionsFilter]
    search_fields = ["slug", "name", "description"]
    readonly_fields = [
        "slug",
        "name",
        "auth_schemes",
        "no_auth",
        "categories",
        "description",
        "is_allowed",
        "in_catalog",
        "last_synced_at",
        "created_at",
    ]
    actions = ["allow_toolkits", "disallow_toolkits"]
    guarded_actions = {
        "allow_toolkits": ALLOWLIST_PERMISSION,
        "disallow_toolkits": ALLOWLIST_PERMISSION,
    }
    change_list_template = "admin/sessions_app/toolkit/change_list.html"
    list_per_page = 100

    def get_queryset(self, request: HttpRequest) -> QuerySet[Toolkit]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_sessions=Count(
                    "sessions",
                    filter=Q(sessions__status=ToolRouterSession.Status.ACTIVE),
                    distinct=True,
                )
            )
        )

    def has_manage_toolkit_allowlist_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ALLOWLIST_PERMISSION)

    def has_sync_toolkit_catalog_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(SYNC_PERMISSION)

    def changelist_context(self, request: HttpRequest) -> dict[str, Any]:
        return {
            "can_sync": self.has_sync_toolkit_catalog_permission(request),
            "sync_url": reverse("admin:sessions_app_toolkit_sync"),
            "stale_count": Toolkit.objects.filter(in_catalog=False).count(),
        }

    @admin.display(description="categories")
    def category_list(self, obj: Toolkit) -> str:
        return ", ".join(str(c) for c in obj.categories[:3])

    @admin.display(description="in catalog", ordering="in_catalog")
    def catalog_state(self, obj: Toolkit) -> str:
        return "yes" if obj.in_catalog else format_html("<strong>{}</strong>", "NO LONGER LISTED")

    @admin.display(description="active sessions", ordering="active_sessions")
    def active_session_count(self, obj: Toolkit) -> str:
        count = getattr(obj, "active_sessions", 0)
        if not count:
            return "0"
        url = reverse("admin:sessions_app_toolroutersession_changelist")
        return format_html(
            '<a href="{}?status__exact=active&amp;toolkit={}">{}</a>', url, obj.slug, count
        )

    @admin.action(description="Allow for sessions", permissions=["manage_toolkit_allowlist"])
    def allow_toolkits(self, request: HttpRequest, queryset: QuerySet[Toolkit]) -> None:
        result = toolkit_allowlist_set(
            toolkits=queryset, allowed=True, actor=request.user, request=request
        )
        self._report_allowlist(request, result)

    @admin.action(description="Disallow for sessions", permissions=["manage_toolkit_allowlist"])
    def disallow_toolkits(self, request: HttpRequest, queryset: QuerySet[Toolkit]) -> None:
        result = toolkit_allowlist_set(
            toolkits=queryset, allowed=False, actor=request.user, request=request
        )
        self._report_allowlist(request, result)

    def _report_allowlist(self, request: HttpRequest, result: AllowlistResult) -> None:
        verb = "Allowed" if result.allowed else "Disallowed"
        changed = result.changed
        self.message_user(
            request,
            f"{verb} {_toolkits(len(changed))}" + (f": {', '.join(changed)}." if changed else "."),
            messages.SUCCESS,
        )
        if result.not_in_catalog:
            self.message_user(
                request,
                "Not allowed, since Composio's catalog no longer lists them: "
                + ", ".join(result.not_in_catalog)
                + ".",
                messages.ERROR,
            )
        if result.still_used:
            self.message_user(
                request,
                "Active sessions still grant "
                + ", ".join(f"{slug} ({count})" for slug, count in result.still_used)
                + "; refresh those sessions to take it away.",
                messages.WARNING,
            )

    def get_urls(self) -> list[Any]:
        return [
            path(
                "sync/",
                self.admin_site.admin_view(require_POST(self.sync_view)),
                name="sessions_app_toolkit_sync",
            ),
            *super().get_urls(),
        ]

    def sync_view(self, request: HttpRequest) -> HttpResponse:
        """Sync the catalog from Composio (POST only) and say what changed."""
        changelist = reverse("admin:sessions_app_toolkit_changelist")
        access.require(
            request.user,
            SYNC_PERMISSION,
            operation="catalog.sync",
            reason=f"Syncing the catalog needs {SYNC_PERMISSION}.",
            request=request,
        )
        try:
            result = toolkit_catalog.toolkit_catalog_sync(actor=request.user, request=request)
        except errors.ComposioError as exc:
            self.message_user(request, f"The catalog was not synced: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(changelist)
        self.message_user(request, result.summary(), messages.SUCCESS)
        if result.vanished:
            self.message_user(
                request,
                "No longer in Composio's catalog: " + ", ".join(sorted(result.vanished)[:30]) + ".",
                messages.WARNING,
            )
        return HttpResponseRedirect(changelist)


def _toolkits(count: int) -> str:
    return ngettext("%(n)d toolkit", "%(n)d toolkits", count) % {"n": count}
