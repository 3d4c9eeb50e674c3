"""The Django admin of the console: end users and their sessions, toolkits, intents.

Actions that touch Composio copy `delete_selected`: an intermediate page that re-posts `action`,
`_selected_action` (and `select_across`) with `post=yes`; the pks come from the `queryset`
argument. They call the session services, which check permissions again and audit every attempt.
The MCP URL never appears here in full: only scheme, host and a fingerprint.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from sessions_app import access
from sessions_app.admin.forms import EndUserAdminForm, EndUserImportForm, SessionToolkitsForm
from sessions_app.admin.safety import ReadOnlyAdminMixin
from sessions_app.audit import log as audit
from sessions_app.bulk import jobs as bulk
from sessions_app.models import (
    AuditEvent,
    BulkJob,
    EndUser,
    SessionOperation,
    Toolkit,
    ToolRouterSession,
)
from sessions_app.tool_router import errors, services

# The actions each needing its custom permission; posting one without it is audited as refused.
SESSION_ACTIONS = {
    "create_sessions": "sessions_app.create_session",
    "refresh_sessions": "sessions_app.refresh_session",
    "change_session_toolkits": "sessions_app.change_session_toolkits",
    "delete_sessions": "sessions_app.delete_session",
}
TOOLKIT_ACTIONS = {
    "allow_toolkits": "sessions_app.manage_toolkit_allowlist",
    "disallow_toolkits": "sessions_app.manage_toolkit_allowlist",
}
SESSION_ADMIN_ACTIONS = {"retry_remote_deletes": "sessions_app.delete_session"}

_OUTCOME_LEVEL = {
    services.Outcome.SUCCEEDED: messages.SUCCESS,
    services.Outcome.SKIPPED: messages.WARNING,
    services.Outcome.IN_PROGRESS: messages.WARNING,
    services.Outcome.FAILED: messages.ERROR,
    services.Outcome.UNKNOWN: messages.ERROR,
    services.Outcome.REFUSED: messages.ERROR,
}
_OUTCOME_WORDS = {
    services.Outcome.SUCCEEDED: "succeeded",
    services.Outcome.SKIPPED: "skipped",
    services.Outcome.IN_PROGRESS: "already in progress",
    services.Outcome.FAILED: "failed",
    services.Outcome.UNKNOWN: "outcome unknown",
    services.Outcome.REFUSED: "refused",
}


def sync_limit() -> int:
    return settings.TOOL_ROUTER_SYNC_LIMIT


def refuse_posted_action(
    request: HttpRequest, model_admin: admin.ModelAdmin, guarded: dict[str, str]
) -> HttpResponse | None:
    """Refuse, audit and redirect a posted action the user may not run (it is hidden for them)."""
    if request.method != "POST":
        return None
    action = request.POST.get("action", "")
    if action not in guarded or action in model_admin.get_actions(request):
        return None
    access.refuse(
        operation=f"admin.{model_admin.model._meta.model_name}.{action}",
        reason=f"Admin action {action} needs {guarded[action]}.",
        request=request,
        missing=[guarded[action]],
    )
    model_admin.message_user(
        request, "You do not have permission to run that action.", messages.ERROR
    )
    return HttpResponseRedirect(request.get_full_path())


def report_results(
    model_admin: admin.ModelAdmin, request: HttpRequest, results: Sequence[services.SessionResult]
) -> None:
    """One summary line with counts per outcome, then each result that needs attention named."""
    counts = Counter(r.outcome for r in results)
    summary = ", ".join(f"{n} {_OUTCOME_WORDS[o]}" for o, n in counts.items())
    level = messages.SUCCESS if counts.keys() == {services.Outcome.SUCCEEDED} else messages.WARNING
    model_admin.message_user(request, f"{len(results)} end users: {summary}.", level)
    for result in results:
        if len(results) == 1 or not result.ok:
            model_admin.message_user(request, result.message, _OUTCOME_LEVEL[result.outcome])


def too_many(model_admin: admin.ModelAdmin, request: HttpRequest, count: int) -> bool:
    limit = sync_limit()
    if count <= limit:
        return False
    model_admin.message_user(
        request,
        f"You selected {count} end users; this action handles at most {limit} at a time "
        "(TOOL_ROUTER_SYNC_LIMIT); only create and refresh run larger selections as background "
        "jobs. Select fewer and repeat.",
        messages.ERROR,
    )
    return True


def hidden_selection(request: HttpRequest, objects: Sequence[Any]) -> dict[str, Any]:
    return {
        "action": request.POST.get("action", ""),
        "select_across": request.POST.get("select_across", "0"),
        "selected_pks": [obj.pk for obj in objects],
    }


# --- End users ---------------------------------------------------------------------------------


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


class SessionHistoryInline(admin.TabularInline):
    """The end user's sessions, newest first: what replaced what, who, when."""

    model = ToolRouterSession
    fk_name = "end_user"
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "Session history"
    fields = [
        "session_id",
        "status",
        "toolkits_list",
        "mcp_url_masked",
        "created_by",
        "created_at",
        "replaces",
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

    @admin.display(description="toolkits")
    def toolkits_list(self, obj: ToolRouterSession) -> str:
        return ", ".join(obj.toolkits)

    @admin.display(description="MCP URL")
    def mcp_url_masked(self, obj: ToolRouterSession) -> str:
        return services.mcp_url_masked(obj.mcp_url)


@admin.register(EndUser)
class EndUserAdmin(admin.ModelAdmin):
    form = EndUserAdminForm
    list_display = [
        "external_id",
        "display_name",
        "email",
        "active_session",
        "active_toolkits",
        "created_at",
    ]
    search_fields = ["external_id", "email", "display_name", "sessions__session_id"]
    list_filter = [HasActiveSessionFilter, ActiveToolkitFilter, "created_at"]
    actions = ["create_sessions", "refresh_sessions", "change_session_toolkits", "delete_sessions"]
    change_list_template = "admin/sessions_app/enduser/change_list.html"
    list_per_page = 50

    # -- list ---------------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[EndUser]:
        active = ToolRouterSession.objects.filter(status=ToolRouterSession.Status.ACTIVE)
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("sessions", queryset=active, to_attr="active_sessions"))
        )

    @staticmethod
    def _active(obj: EndUser) -> ToolRouterSession | None:
        sessions = getattr(obj, "active_sessions", None)
        if sessions is None:
            return obj.sessions.filter(status=ToolRouterSession.Status.ACTIVE).first()
        return sessions[0] if sessions else None

    @admin.display(description="active session")
    def active_session(self, obj: EndUser) -> str:
        session = self._active(obj)
        return session.short_id if session else "-"

    @admin.display(description="toolkits")
    def active_toolkits(self, obj: EndUser) -> str:
        session = self._active(obj)
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

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        refused = refuse_posted_action(request, self, SESSION_ACTIONS)
        if refused is not None:
            return refused
        extra_context = {
            **(extra_context or {}),
            "can_import": self.has_add_permission(request),
            "import_url": reverse("admin:sessions_app_enduser_import"),
        }
        return super().changelist_view(request, extra_context)

    # -- permissions for the actions ----------------------------------------------------------

    def has_create_session_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sessions_app.create_session")

    def has_refresh_session_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sessions_app.refresh_session")

    def has_change_session_toolkits_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sessions_app.change_session_toolkits")

    def has_delete_session_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sessions_app.delete_session")

    # -- the actions --------------------------------------------------------------------------

    @admin.action(description="Create Tool Router session...", permissions=["create_session"])
    def create_sessions(self, request: HttpRequest, queryset: QuerySet[EndUser]) -> Any:
        def run(user: EndUser, toolkits: list[str] | None) -> services.SessionResult:
            return services.tool_router_session_create(
                end_user=user, toolkits=toolkits or [], actor=request.user, request=request
            )

        return self._toolkit_action(
            request,
            queryset,
            run=run,
            title="Create Tool Router sessions",
            operation="create",
            intro="Each selected end user gets a new, isolated session with exactly the toolkits "
            "chosen below. Users who already have an active session are skipped (use refresh).",
            button="Create sessions",
        )

    @admin.action(description="Refresh Tool Router session...", permissions=["refresh_session"])
    def refresh_sessions(self, request: HttpRequest, queryset: QuerySet[EndUser]) -> Any:
        def run(user: EndUser, toolkits: list[str] | None) -> services.SessionResult:
            return services.tool_router_session_refresh(
                end_user=user, toolkits=toolkits, actor=request.user, request=request
            )

        return self._toolkit_action(
            request,
            queryset,
            run=run,
            title="Refresh Tool Router sessions",
            operation="refresh",
            intro="Each selected end user gets a new session (new id and MCP URL) with the "
            "toolkits chosen below; the old session is superseded and deleted at Composio, so "
            "its URL stops working. Their agents must be given the new MCP URL.",
            button="Refresh sessions",
            keep_current_option=True,
        )

    @admin.action(
        description="Change toolkits of the session in place...",
        permissions=["change_session_toolkits"],
    )
    def change_session_toolkits(self, request: HttpRequest, queryset: QuerySet[EndUser]) -> Any:
        def run(user: EndUser, toolkits: list[str] | None) -> services.SessionResult:
            session = self._active(user)
            if session is None:
                return services.SessionResult(
                    end_user=user,
                    outcome=services.Outcome.SKIPPED,
                    message=f"Skipped {user.external_id}: they have no active session; use create.",
                )
            return services.tool_router_session_change_toolkits(
                session=session, toolkits=toolkits or [], actor=request.user, request=request
            )

        return self._toolkit_action(
            request,
            queryset,
            run=run,
            title="Change session toolkits in place",
            operation="change_toolkits",
            intro="The active session of each selected end user keeps its id and MCP URL and "
            "gets exactly the toolkits chosen below. If someone else changed a session at "
            "Composio meanwhile, that user is left unchanged.",
            button="Change toolkits",
        )

    @admin.action(description="Delete Tool Router session...", permissions=["delete_session"])
    def delete_sessions(self, request: HttpRequest, queryset: QuerySet[EndUser]) -> Any:
        count = queryset.count()
        if too_many(self, request, count):
            return None
        users = list(queryset.order_by("external_id"))
        if request.POST.get("post") == "yes":
            results = []
            for user in users:
                session = self._active(user)
                if session is None:
                    results.append(
                        services.SessionResult(
                            end_user=user,
                            outcome=services.Outcome.SKIPPED,
                            message=f"Skipped {user.external_id}: they have no active session.",
                        )
                    )
                    continue
                results.append(
                    services.tool_router_session_delete(
                        session=session, actor=request.user, request=request
                    )
                )
            report_results(self, request, results)
            return None
        rows = [(user, self._active(user)) for user in users]
        context = {
            **self.admin_site.each_context(request),
            "title": "Delete Tool Router sessions",
            "opts": self.model._meta,
            "rows": rows,
            "count": count,
            "with_session": sum(1 for _, s in rows if s is not None),
            **hidden_selection(request, users),
        }
        return TemplateResponse(request, "admin/sessions_app/enduser/delete_sessions.html", context)

    def _toolkit_action(
        self,
        request: HttpRequest,
        queryset: QuerySet[EndUser],
        *,
        run: Callable[[EndUser, list[str] | None], services.SessionResult],
        title: str,
        operation: str,
        intro: str,
        button: str,
        keep_current_option: bool = False,
    ) -> TemplateResponse | None:
        count = queryset.count()
        # Creates and refreshes above the synchronous limit go to a background job.
        background = operation in (BulkJob.Kind.CREATE, BulkJob.Kind.REFRESH) and (
            count > sync_limit()
        )
        if not background and too_many(self, request, count):
            return None
        shown = self.get_queryset(request).filter(pk__in=queryset.values("pk"))
        if background:
            users = list(shown.order_by("external_id")[:10])
        else:
            users = sorted(shown, key=lambda u: u.external_id)
        if request.POST.get("post") == "yes":
            form = SessionToolkitsForm(request.POST, keep_current_option=keep_current_option)
            if form.is_valid() and background:
                return self._start_bulk_job(
                    request, queryset, kind=operation, toolkits=form.cleaned_data["toolkits"]
                )
            if form.is_valid():
                results = [run(user, form.cleaned_data["toolkits"]) for user in users]
                report_results(self, request, results)
                return None
            audit.record(
                action="input.rejected",
                outcome=AuditEvent.Outcome.REJECTED,
                request=request,
                reason=" ".join(form.errors.get("toolkits", [])) or "Invalid toolkit choice.",
                details={
                    "operation": operation,
                    "crafted": form.crafted,
                    "toolkits": [v[:100] for v in request.POST.getlist("toolkits")[:50]],
                    "end_users": [u.external_id for u in users][:50],
                },
            )
        else:
            form = SessionToolkitsForm(keep_current_option=keep_current_option)
        current = [set(s.toolkits) for u in users if (s := self._active(u)) is not None]
        preselected = set.intersection(*current) if current and operation != "create" else set()
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "intro": intro,
            "button": button,
            "opts": self.model._meta,
            "form": form,
            "groups": form.groups(preselected),
            "users": users[:10],
            "rows": [(u, self._active(u)) for u in users[:10]],
            "count": count,
            "more": max(0, count - 10),
            "max_toolkits": settings.TOOL_ROUTER_MAX_TOOLKITS,
            "operation": operation,
            **hidden_selection(request, users),
        }
        if not background:
            return TemplateResponse(
                request, "admin/sessions_app/enduser/session_action.html", context
            )
        across = request.POST.get("select_across") == "1"
        # "Select all N" re-posts select_across (one pk keeps Django treating it as an action);
        # a hand-picked page of users re-posts every pk.
        pks = list(queryset.order_by("pk").values_list("pk", flat=True)[: 1 if across else None])
        seconds = bulk.expected_seconds(kind=operation, count=count)
        context.update(
            selected_pks=pks,
            background=True,
            expected=bulk.duration_words(seconds),
            rate_per_minute=int(bulk.rate_limit.rate_per_minute()),
            requests_per_item=bulk.requests_per_item(operation),
            concurrency=bulk.concurrency(),
            sync_limit=sync_limit(),
        )
        return TemplateResponse(request, "sessions_app/bulk/admin_confirm.html", context)

    def _start_bulk_job(
        self,
        request: HttpRequest,
        queryset: QuerySet[EndUser],
        *,
        kind: str,
        toolkits: list[str] | None,
    ) -> HttpResponse | None:
        try:
            job = bulk.bulk_job_start(
                kind=kind,
                end_users=queryset,
                toolkits=toolkits,
                actor=request.user,
                request=request,
            )
        except PermissionDenied as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return None
        self.message_user(
            request,
            f"Started a background job for {job.total} end users; follow it below.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:sessions_app_bulkjob_change", args=[job.pk]))

    # -- CSV import ---------------------------------------------------------------------------

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
        if not self.has_add_permission(request):
            raise access.refuse(
                operation="enduser.import",
                reason="Importing end users needs the add end user permission.",
                request=request,
                missing=["sessions_app.add_enduser"],
            )
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Import end users from CSV",
            "opts": self.model._meta,
        }
        changelist = reverse("admin:sessions_app_enduser_changelist")
        if request.method == "POST" and request.POST.get("post") == "yes":
            content = request.POST.get("csv_text", "").encode()
            preview, created = services.end_user_import(
                content=content, actor=request.user, request=request
            )
            if preview.error:
                self.message_user(request, preview.error + " Nothing was imported.", messages.ERROR)
                return HttpResponseRedirect(request.path)
            self.message_user(
                request,
                f"Imported {created} end users; {len(preview.rejected)} rows were skipped.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(changelist)
        if request.method == "POST":
            form = EndUserImportForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["csv_file"]
                content = upload.read(services.IMPORT_MAX_BYTES + 1)
                preview = services.end_user_import_preview(content=content)
                if preview.error:
                    form.add_error("csv_file", preview.error + " Nothing was imported.")
                    audit.record(
                        action="enduser.import",
                        outcome=AuditEvent.Outcome.REJECTED,
                        request=request,
                        reason=preview.error,
                    )
                else:
                    context.update(
                        preview=preview,
                        csv_text=content.decode("utf-8-sig"),
                        first_valid=preview.valid[:20],
                    )
        else:
            form = EndUserImportForm()
        context["form"] = form
        return TemplateResponse(request, "admin/sessions_app/enduser/import.html", context)


# --- Sessions ----------------------------------------------------------------------------------


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
class ToolRouterSessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: sessions change only through the services (actions on end users)."""

    list_display = [
        "short_id",
        "end_user",
        "status",
        "toolkits_list",
        "mcp_url_masked",
        "created_by",
        "created_at",
        "replaces",
        "remote_delete_state",
    ]
    list_select_related = ["end_user", "created_by", "replaces"]
    list_filter = ["status", SessionToolkitFilter, RemoteDeletePendingFilter, "created_at"]
    # Never the MCP URL: searching it would let anyone probe for a URL they hold.
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
    ]
    readonly_fields = fields
    actions = ["retry_remote_deletes"]

    def has_delete_session_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sessions_app.delete_session")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        refused = refuse_posted_action(request, self, SESSION_ADMIN_ACTIONS)
        return refused or super().changelist_view(request, extra_context)

    @admin.display(description="session", ordering="session_id")
    def short_id(self, obj: ToolRouterSession) -> str:
        return obj.short_id

    @admin.display(description="toolkits")
    def toolkits_list(self, obj: ToolRouterSession) -> str:
        return ", ".join(obj.toolkits)

    @admin.display(description="MCP URL")
    def mcp_url_masked(self, obj: ToolRouterSession) -> str:
        return services.mcp_url_masked(obj.mcp_url)

    @admin.display(description="replaced by")
    def replaced_by_link(self, obj: ToolRouterSession) -> str:
        newer = ToolRouterSession.objects.filter(replaces=obj).first()
        if newer is None:
            return "-"
        url = reverse("admin:sessions_app_toolroutersession_change", args=[newer.pk])
        return format_html('<a href="{}">{}</a>', url, newer.session_id)

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
        result = services.tool_router_session_retry_remote_deletes(
            actor=request.user, request=request
        )
        self.message_user(
            request,
            f"Deleted {len(result.deleted)} superseded sessions at Composio; "
            f"{len(result.failed)} still failing.",
            messages.SUCCESS if not result.failed else messages.WARNING,
        )
        for session_id, error in result.failed.items():
            self.message_user(request, f"{session_id}: {error}", messages.ERROR)


# --- Toolkits ----------------------------------------------------------------------------------


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
class ToolkitAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
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
        return request.user.has_perm("sessions_app.manage_toolkit_allowlist")

    def has_sync_toolkit_catalog_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sessions_app.sync_toolkit_catalog")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        refused = refuse_posted_action(request, self, TOOLKIT_ACTIONS)
        if refused is not None:
            return refused
        extra_context = {
            **(extra_context or {}),
            "can_sync": self.has_sync_toolkit_catalog_permission(request),
            "sync_url": reverse("admin:sessions_app_toolkit_sync"),
            "stale_count": Toolkit.objects.filter(in_catalog=False).count(),
        }
        return super().changelist_view(request, extra_context)

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
        self._set_allowed(request, queryset, allowed=True)

    @admin.action(description="Disallow for sessions", permissions=["manage_toolkit_allowlist"])
    def disallow_toolkits(self, request: HttpRequest, queryset: QuerySet[Toolkit]) -> None:
        self._set_allowed(request, queryset, allowed=False)

    def _set_allowed(self, request: HttpRequest, queryset: QuerySet, *, allowed: bool) -> None:
        changed: list[str] = []
        refused: list[str] = []
        still_used: list[str] = []
        for toolkit in queryset.order_by("slug"):
            if toolkit.is_allowed == allowed:
                continue
            if allowed and not toolkit.in_catalog:
                refused.append(toolkit.slug)
                continue
            toolkit.is_allowed = allowed
            toolkit.save(update_fields=["is_allowed"])
            changed.append(toolkit.slug)
            in_use = getattr(toolkit, "active_sessions", 0)
            if not allowed and in_use:
                still_used.append(f"{toolkit.slug} ({in_use})")
            audit.record(
                action="toolkit.allow" if allowed else "toolkit.disallow",
                outcome=AuditEvent.Outcome.SUCCESS,
                request=request,
                reason=f"{'Allowed' if allowed else 'Disallowed'} {toolkit.slug}.",
                details={"toolkit": toolkit.slug, "active_sessions": in_use},
            )
        verb = "Allowed" if allowed else "Disallowed"
        self.message_user(
            request,
            f"{verb} {len(changed)} toolkits" + (f": {', '.join(changed)}." if changed else "."),
            messages.SUCCESS,
        )
        if refused:
            self.message_user(
                request,
                "Not allowed, since Composio's catalog no longer lists them: "
                + ", ".join(refused)
                + ".",
                messages.ERROR,
            )
        if still_used:
            self.message_user(
                request,
                "Active sessions still grant "
                + ", ".join(still_used)
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
        changelist = reverse("admin:sessions_app_toolkit_changelist")
        if not self.has_sync_toolkit_catalog_permission(request):
            raise access.refuse(
                operation="catalog.sync",
                reason="Syncing the catalog needs sessions_app.sync_toolkit_catalog.",
                request=request,
                missing=["sessions_app.sync_toolkit_catalog"],
            )
        try:
            result = services.toolkit_catalog_sync(actor=request.user, request=request)
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


# --- Intents -----------------------------------------------------------------------------------


@admin.register(SessionOperation)
class SessionOperationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The intents recorded before each call to Composio; `unknown` ones need reconciling."""

    list_display = [
        "created_at",
        "kind",
        "state",
        "end_user",
        "remote_session_id",
        "actor",
        "error",
        "finished_at",
    ]
    list_filter = ["state", "kind", "created_at"]
    search_fields = ["end_user__external_id", "remote_session_id"]
    list_select_related = ["end_user", "actor"]
    readonly_fields = [
        "public_id",
        "kind",
        "state",
        "end_user",
        "session",
        "toolkits",
        "remote_session_id",
        "actor",
        "error",
        "created_at",
        "finished_at",
    ]
