"""End users in the admin: their active session at a glance, their session history, the session
actions (implemented in `session_actions`) and the CSV import (in `end_user_import`)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Prefetch, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse

from sessions_app.access import Actor
from sessions_app.admin import session_actions
from sessions_app.admin.actions import (
    SESSION_ACTIONS,
    GuardedActionsMixin,
    SessionPermissionsMixin,
)
from sessions_app.admin.console_links import CardLinkMixin
from sessions_app.admin.end_user_import import EndUserImportMixin
from sessions_app.admin.forms import EndUserAdminForm
from sessions_app.admin.locators import LocatorColumn, LocatorColumnsMixin
from sessions_app.admin.sessions import SessionColumns, stale_badge
from sessions_app.models import EndUser, Toolkit, ToolRouterSession
from sessions_app.tool_router import locators


class HasActiveSessionFilter(admin.SimpleListFilter):
    title = "active session"
    parameter_name = "has_session"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Has an active session"), ("no", "No active session")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        active = Q(sessions__status=ToolRouterSession.Status.ACTIVE)
        if self.value() == "yes":
            return queryset.filter(active).distinct()
        if self.value() == "no":
            return queryset.exclude(active)
        return None


class ActiveToolkitFilter(admin.SimpleListFilter):
    """End users whose active session grants a toolkit (only toolkits some session uses)."""

    title = "toolkit of the active session"
    parameter_name = "toolkit"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        used = (
            Toolkit.objects.filter(sessions__status=ToolRouterSession.Status.ACTIVE)
            .distinct()
            .order_by("slug")
        )
        return [(t.slug, t.slug) for t in used]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if not self.value():
            return None
        return queryset.filter(
            sessions__status=ToolRouterSession.Status.ACTIVE,
            sessions__toolkit_links__slug=self.value(),
        ).distinct()


class StaleSessionFilter(admin.SimpleListFilter):
    """End users whose active session Composio no longer knows (`tool_router.drift`)."""

    title = "known to Composio"
    parameter_name = "stale"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Stale: Composio no longer knows it")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() == "yes":
            return queryset.filter(
                sessions__status=ToolRouterSession.Status.ACTIVE,
                sessions__stale_since__isnull=False,
            ).distinct()
        return None


def _active_session_id(obj: EndUser, user: Actor) -> str:
    session = session_actions.active_session(obj)
    return locators.locator(session.session_id, user, short=True) if session else "-"


class SessionHistoryInline(SessionColumns, admin.TabularInline):
    """The end user's sessions, newest first: what replaced what, who, when."""

    model = ToolRouterSession
    fk_name = "end_user"
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "Session history"
    fields = [
        "session_id",
        *SessionColumns.session_columns,
        "superseded_at",
        "deleted_at",
        "remote_deleted_at",
    ]
    readonly_fields = fields
    ordering = ["-created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(EndUser)
class EndUserAdmin(
    LocatorColumnsMixin,
    SessionPermissionsMixin,
    EndUserImportMixin,
    CardLinkMixin,
    GuardedActionsMixin,
):
    form = EndUserAdminForm
    locator_columns = {"active_session": LocatorColumn("active session", _active_session_id)}
    list_display = [
        "external_id",
        "display_name",
        "email",
        "active_session",
        "active_session_known",
        "active_toolkits",
        "created_at",
    ]
    search_fields = ["external_id", "email", "display_name", "sessions__session_id"]
    list_filter = [HasActiveSessionFilter, StaleSessionFilter, ActiveToolkitFilter, "created_at"]
    actions = [
        "create_sessions",
        "refresh_sessions",
        "change_session_toolkits",
        "delete_sessions",
        "recreate_missing_sessions",
    ]
    guarded_actions = SESSION_ACTIONS
    change_list_template = "admin/sessions_app/enduser/change_list.html"
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[EndUser]:
        active = ToolRouterSession.objects.filter(status=ToolRouterSession.Status.ACTIVE)
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("sessions", queryset=active, to_attr="active_sessions"))
        )

    def changelist_context(self, request: HttpRequest) -> dict[str, Any]:
        return {
            "can_import": self.has_add_permission(request),
            "import_url": reverse("admin:sessions_app_enduser_import"),
        }

    @admin.display(description="active session")
    def active_session(self, obj: EndUser) -> str:
        # Swapped for the request's locator column (`locator_columns`); masked if ever not.
        return _active_session_id(obj, None)

    @admin.display(description="at Composio")
    def active_session_known(self, obj: EndUser) -> str:
        return stale_badge(session_actions.active_session(obj))

    @admin.display(description="toolkits")
    def active_toolkits(self, obj: EndUser) -> str:
        session = session_actions.active_session(obj)
        return ", ".join(session.toolkits) if session else "-"

    def get_inlines(self, request: HttpRequest, obj: EndUser | None) -> list[Any]:
        # A new end user has no history to show.
        return [SessionHistoryInline] if obj is not None else []

    def get_readonly_fields(self, request: HttpRequest, obj: EndUser | None = None) -> list[str]:
        # The external id is the user id at Composio: once a session exists it must not change.
        if obj is not None and obj.sessions.exists():
            return ["external_id"]
        return []

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # End users are never deleted from here: their sessions and audit trail refer to them.
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Create Tool Router session...", permissions=["create_session"])
    def create_sessions(self, request: HttpRequest, queryset: QuerySet[EndUser]) -> Any:
        return session_actions.toolkit_action(self, request, queryset, session_actions.CREATE_PAGE)

    @admin.action(description="Refresh Tool Router session...", permissions=["refresh_session"])
    def refresh_sessions(self, request: HttpRequest, queryset: QuerySet[EndUser]) -> Any:
        return session_actions.toolkit_action(self, request, queryset, session_actions.REFRESH_PAGE)

    @admin.action(
        description="Change toolkits of the session in place...",
        permissions=["change_session_toolkits"],
    )
    def change_session_toolkits(self, request: HttpRequest, queryset: QuerySet[EndUser]) -> Any:
        return session_actions.toolkit_action(self, request, queryset, session_actions.CHANGE_PAGE)

    @admin.action(description="Delete Tool Router session...", permissions=["delete_session"])
    def delete_sessions(self, request: HttpRequest, queryset: QuerySet[EndUser]) -> Any:
        return session_actions.delete_sessions(self, request, queryset)

    @admin.action(
        description="Re-create missing sessions (stale: Composio no longer knows them)...",
        permissions=["refresh_session"],
    )
    def recreate_missing_sessions(self, request: HttpRequest, queryset: QuerySet[EndUser]) -> Any:
        return session_actions.recreate_missing(self, request, queryset, queryset)
