"""Tool Router sessions in the admin: read-only, with the remote deletes still to retry.

The MCP URL never appears here in full: only scheme, host and a fingerprint. A session id (which
rebuilds the URL) shows in full only to staff who may reveal MCP URLs; everyone else sees its
masked form (`admin.locators`), and searches it by exact value only (`admin.safety`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext

from sessions_app import access
from sessions_app.access import Actor
from sessions_app.admin import session_actions
from sessions_app.admin.actions import (
    GuardedActionsMixin,
    SessionPermissionsMixin,
    session_link,
)
from sessions_app.admin.console_links import CardLinkMixin
from sessions_app.admin.locators import LocatorColumn, LocatorColumnsMixin, session_id_of, text_of
from sessions_app.admin.safety import ReadOnlyAdminMixin
from sessions_app.models import EndUser, Toolkit, ToolRouterSession
from sessions_app.tool_router import config_history, locators, mcp_url, remote_deletes


def stale_badge(session: ToolRouterSession | None) -> str:
    """The session's standing at Composio as the admin lists show it: a stale badge, when it
    was last checked, or "-" for no (active) session."""
    if session is None or session.status != ToolRouterSession.Status.ACTIVE:
        return "-"
    if session.stale_since is not None:
        return render_to_string("sessions_app/_stale_badge.html", {"session": session})
    if session.verified_at is not None:
        return f"known ({session.verified_at:%Y-%m-%d %H:%M})"
    return "not checked yet"


def _replaced_by(obj: ToolRouterSession, user: Actor) -> str:
    newer = ToolRouterSession.objects.filter(replaces=obj).first()
    if newer is None:
        return "-"
    url = reverse("admin:sessions_app_toolroutersession_change", args=[newer.pk])
    return format_html('<a href="{}">{}</a>', url, locators.locator(newer.session_id, user))


class SessionColumns(LocatorColumnsMixin):
    """The columns a session shows wherever it is listed (its toolkits, its masked MCP URL, its
    id and the one it replaced as the viewing user may see them)."""

    locator_columns = {
        "session_id": LocatorColumn("session id", session_id_of("session_id")),
        "replaces": LocatorColumn("replaces", session_id_of("replaces.session_id")),
    }

    session_columns = [
        "status",
        "toolkits_list",
        "mcp_url_masked",
        "created_by",
        "created_at",
        "replaces",
    ]

    @admin.display(description="toolkits")
    def toolkits_list(self, obj: ToolRouterSession) -> str:
        return ", ".join(obj.toolkits)

    @admin.display(description="MCP URL")
    def mcp_url_masked(self, obj: ToolRouterSession) -> str:
        return mcp_url.masked_text(obj.mcp_url)


class SessionToolkitFilter(admin.SimpleListFilter):
    title = "toolkit"
    parameter_name = "toolkit"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        used = Toolkit.objects.filter(sessions__isnull=False).distinct().order_by("slug")
        return [(t.slug, t.slug + ("" if t.in_catalog else " (not in catalog)")) for t in used]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if not self.value():
            return None
        return queryset.filter(toolkit_links__slug=self.value()).distinct()


class StaleFilter(admin.SimpleListFilter):
    title = "known to Composio"
    parameter_name = "stale"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Stale: Composio no longer knows it")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() == "yes":
            return queryset.filter(
                status=ToolRouterSession.Status.ACTIVE, stale_since__isnull=False
            )
        return None


class RemoteDeletePendingFilter(admin.SimpleListFilter):
    title = "deleted at Composio"
    parameter_name = "remote_delete"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("failed", "Remote delete failed (to retry)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() == "failed":
            return queryset.filter(remote_deleted_at__isnull=True).exclude(remote_delete_error="")
        return None


@admin.register(ToolRouterSession)
class ToolRouterSessionAdmin(
    ReadOnlyAdminMixin, SessionColumns, SessionPermissionsMixin, CardLinkMixin, GuardedActionsMixin
):
    """Read-only: sessions change only through the services (actions on end users)."""

    def end_user_of(self, obj: ToolRouterSession) -> EndUser:
        return obj.end_user

    locator_columns = {
        **SessionColumns.locator_columns,
        "short_id": LocatorColumn(
            "session", session_id_of("session_id", short=True), ordering="session_id"
        ),
        "replaced_by_link": LocatorColumn("replaced by", _replaced_by),
        "remote_delete_error": LocatorColumn(
            "remote delete error", text_of("remote_delete_error", "session_id")
        ),
    }

    list_display = [
        "short_id",
        "end_user",
        *SessionColumns.session_columns,
        "known_at_composio",
        "remote_delete_state",
    ]
    list_select_related = ["end_user", "created_by", "replaces"]
    list_filter = [
        "status",
        StaleFilter,
        SessionToolkitFilter,
        RemoteDeletePendingFilter,
        "created_at",
    ]
    # Never the MCP URL: searching it would let anyone probe for a URL they hold. The session id
    # is searched by exact value only for staff who may not see it (`safety.guard_admins`).
    search_fields = ["session_id", "end_user__external_id", "end_user__email"]
    fields = [
        "session_id",
        "end_user",
        "status",
        "toolkits_list",
        "mcp_url_masked",
        "mcp_type",
        "config_version",
        "created_by",
        "created_at",
        "replaces",
        "replaced_by_link",
        "superseded_at",
        "deleted_at",
        "remote_deleted_at",
        "remote_delete_error",
        "known_at_composio",
        "verified_at",
        "stale_since",
    ]
    readonly_fields = fields
    actions = ["retry_remote_deletes", "recreate_missing_sessions"]
    guarded_actions = {
        "retry_remote_deletes": access.SESSION_PERMISSION["delete"],
        "recreate_missing_sessions": access.SESSION_PERMISSION["refresh"],
    }

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        # Composio's record of the session's configuration beside its audit events (read-only;
        # every role that may view the session sees it, auditors included).
        if obj is not None and not add:
            context["config_history"] = config_history.session_config_history(obj, request=request)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="session", ordering="session_id")
    def short_id(self, obj: ToolRouterSession) -> str:
        # Swapped for the request's locator column (`locator_columns`); masked if ever not.
        return mcp_url.masked_id_text(obj.session_id)

    @admin.display(description="replaced by")
    def replaced_by_link(self, obj: ToolRouterSession) -> str:
        return _replaced_by(obj, None)

    @admin.display(description="at Composio")
    def known_at_composio(self, obj: ToolRouterSession) -> str:
        return stale_badge(obj)

    @admin.display(description="deleted at Composio")
    def remote_delete_state(self, obj: ToolRouterSession) -> str:
        if obj.remote_deleted_at:
            return "yes"
        if obj.remote_delete_error:
            return "failed, to retry"
        return "-"

    @admin.action(
        description="Retry failed deletes at Composio (superseded sessions)",
        permissions=["delete_session"],
    )
    def retry_remote_deletes(self, request: HttpRequest, queryset: QuerySet) -> None:
        result = remote_deletes.tool_router_session_retry_remote_deletes(
            actor=request.user, request=request
        )
        deleted = ngettext(
            "Deleted %(n)d superseded session at Composio",
            "Deleted %(n)d superseded sessions at Composio",
            len(result.deleted),
        ) % {"n": len(result.deleted)}
        gone = ToolRouterSession.objects.filter(session_id__in=result.deleted).select_related(
            "end_user"
        )
        if result.deleted:
            links = format_html_join(
                ", ", "{}", ((session_link(request, s.end_user, s.session_id),) for s in gone)
            )
            deleted = format_html("{}: {}", deleted, links)
        self.message_user(
            request,
            format_html("{}; {} still failing.", deleted, len(result.failed)),
            messages.SUCCESS if not result.failed else messages.WARNING,
        )
        for session_id, error in result.failed.items():
            shown = locators.locator(session_id, request.user)
            error = locators.locators_in(error, request.user, [session_id])
            self.message_user(request, f"{shown}: {error}", messages.ERROR)

    @admin.action(
        description="Re-create missing sessions (stale: Composio no longer knows them)...",
        permissions=["refresh_session"],
    )
    def recreate_missing_sessions(self, request: HttpRequest, queryset: QuerySet) -> Any:
        end_users = EndUser.objects.filter(pk__in=queryset.values("end_user"))
        return session_actions.recreate_missing(self, request, queryset, end_users)
