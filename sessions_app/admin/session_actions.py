"""The session actions on end users: create, refresh, change toolkits, delete.

They copy `delete_selected`: an intermediate page that re-posts `action`, `_selected_action`
(and `select_across`) with `post=yes`; the pks come from the `queryset` argument. They call the
session services (or start a bulk job), which check permissions again and audit every attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import ngettext

from sessions_app.admin.actions import hidden_selection, report_results, sync_limit, too_many
from sessions_app.admin.forms import SessionToolkitsForm
from sessions_app.bulk import jobs as bulk
from sessions_app.bulk import progress
from sessions_app.models import BulkJob, EndUser, ToolRouterSession
from sessions_app.tool_router import rejections, selectors, sessions

# What a toolkit action does to one end user with the toolkits chosen (None: keep the current).
Run = Callable[[HttpRequest, EndUser, list[str] | None], sessions.SessionResult]


def active_session(user: EndUser) -> ToolRouterSession | None:
    """The end user's active session (from `active_sessions` when the admin prefetched it)."""
    prefetched = getattr(user, "active_sessions", None)
    if prefetched is None:
        return selectors.active_session(end_user=user)
    return prefetched[0] if prefetched else None


def _skipped(user: EndUser, message: str) -> sessions.SessionResult:
    return sessions.SessionResult(end_user=user, outcome=sessions.Outcome.SKIPPED, message=message)


def _create(
    request: HttpRequest, user: EndUser, toolkits: list[str] | None
) -> sessions.SessionResult:
    return sessions.tool_router_session_create(
        end_user=user, toolkits=toolkits or [], actor=request.user, request=request
    )


def _refresh(
    request: HttpRequest, user: EndUser, toolkits: list[str] | None
) -> sessions.SessionResult:
    return sessions.tool_router_session_refresh(
        end_user=user, toolkits=toolkits, actor=request.user, request=request
    )


def _change_toolkits(
    request: HttpRequest, user: EndUser, toolkits: list[str] | None
) -> sessions.SessionResult:
    session = active_session(user)
    if session is None:
        return _skipped(
            user, f"Skipped {user.external_id}: they have no active session; use create."
        )
    return sessions.tool_router_session_change_toolkits(
        session=session, toolkits=toolkits or [], actor=request.user, request=request
    )


@dataclass(frozen=True)
class ToolkitPage:
    """A toolkit action: the operation, what it does to each end user, its page's words."""

    operation: str
    run: Run
    title: str
    intro: str
    button: str
    keep_current_option: bool = False


CREATE_PAGE = ToolkitPage(
    operation="create",
    run=_create,
    title="Create Tool Router sessions",
    intro="Each selected end user gets a new, isolated session with exactly the toolkits "
    "chosen below. Users who already have an active session are skipped (use refresh).",
    button="Create sessions",
)
REFRESH_PAGE = ToolkitPage(
    operation="refresh",
    run=_refresh,
    title="Refresh Tool Router sessions",
    intro="Each selected end user gets a new session (new id and MCP URL) with the "
    "toolkits chosen below; the old session is superseded and deleted at Composio, so "
    "its URL stops working. Their agents must be given the new MCP URL.",
    button="Refresh sessions",
    keep_current_option=True,
)
CHANGE_PAGE = ToolkitPage(
    operation="change_toolkits",
    run=_change_toolkits,
    title="Change session toolkits in place",
    intro="The active session of each selected end user keeps its id and MCP URL and "
    "gets exactly the toolkits chosen below. If someone else changed a session at "
    "Composio meanwhile, that user is left unchanged.",
    button="Change toolkits",
)


def delete_sessions(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[EndUser]
) -> HttpResponse | None:
    """Delete each selected end user's active session, after a confirmation page."""
    count = queryset.count()
    if too_many(model_admin, request, count):
        return None
    users = list(queryset.order_by("external_id"))
    if request.POST.get("post") == "yes":
        results = []
        for user in users:
            session = active_session(user)
            if session is None:
                results.append(
                    _skipped(user, f"Skipped {user.external_id}: they have no active session.")
                )
                continue
            results.append(
                sessions.tool_router_session_delete(
                    session=session, actor=request.user, request=request
                )
            )
        report_results(model_admin, request, results, operation="delete")
        return None
    rows = [(user, active_session(user)) for user in users]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Delete Tool Router sessions",
        "opts": model_admin.model._meta,
        "rows": rows,
        "count": count,
        "with_session": sum(1 for _, s in rows if s is not None),
        **hidden_selection(request, users),
    }
    return TemplateResponse(request, "admin/sessions_app/enduser/delete_sessions.html", context)


def toolkit_action(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[EndUser],
    page: ToolkitPage,
) -> HttpResponse | None:
    """The toolkit choice page, then `page.run` for each selected end user and a summary.

    Creates and refreshes of more end users than the synchronous limit go to a background job
    instead (after their own confirmation page); other actions refuse that many.
    """
    count = queryset.count()
    background = page.operation in (BulkJob.Kind.CREATE, BulkJob.Kind.REFRESH) and (
        count > sync_limit()
    )
    if not background and too_many(model_admin, request, count):
        return None
    shown = model_admin.get_queryset(request).filter(pk__in=queryset.values("pk"))
    if background:
        users = list(shown.order_by("external_id")[:10])
    else:
        users = sorted(shown, key=lambda u: u.external_id)
    if request.POST.get("post") == "yes":
        form = SessionToolkitsForm(request.POST, keep_current_option=page.keep_current_option)
        if form.is_valid() and background:
            return start_bulk_job(
                model_admin,
                request,
                queryset,
                kind=page.operation,
                toolkits=form.cleaned_data["toolkits"],
            )
        if form.is_valid():
            results = [page.run(request, u, form.cleaned_data["toolkits"]) for u in users]
            report_results(model_admin, request, results, operation=page.operation)
            return None
        rejections.toolkit_choice_rejected(
            operation=page.operation,
            reason=" ".join(form.errors.get("toolkits", [])) or "Invalid toolkit choice.",
            toolkits=request.POST.getlist("toolkits"),
            crafted=form.crafted,
            end_users=[u.external_id for u in users],
            actor=request.user,
            request=request,
        )
    else:
        form = SessionToolkitsForm(keep_current_option=page.keep_current_option)
    context = _toolkit_page_context(model_admin, request, page, form=form, users=users, count=count)
    if not background:
        return TemplateResponse(request, "admin/sessions_app/enduser/session_action.html", context)
    return _bulk_confirm_page(request, queryset, context, operation=page.operation, count=count)


def _toolkit_page_context(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    page: ToolkitPage,
    *,
    form: SessionToolkitsForm,
    users: list[EndUser],
    count: int,
) -> dict[str, Any]:
    # Refresh and change start from the toolkits every selected session already has.
    current = [set(s.toolkits) for u in users if (s := active_session(u)) is not None]
    preselected = set.intersection(*current) if current and page.operation != "create" else set()
    return {
        **model_admin.admin_site.each_context(request),
        "title": page.title,
        "intro": page.intro,
        "button": page.button,
        "opts": model_admin.model._meta,
        "form": form,
        "groups": form.groups(preselected),
        "users": users[:10],
        "rows": [(u, active_session(u)) for u in users[:10]],
        "count": count,
        "more": max(0, count - 10),
        "max_toolkits": settings.TOOL_ROUTER_MAX_TOOLKITS,
        "operation": page.operation,
        **hidden_selection(request, users),
    }


def _bulk_confirm_page(
    request: HttpRequest,
    queryset: QuerySet[EndUser],
    context: dict[str, Any],
    *,
    operation: str,
    count: int,
) -> TemplateResponse:
    across = request.POST.get("select_across") == "1"
    # "Select all N" re-posts select_across (one pk keeps Django treating it as an action);
    # a hand-picked page of users re-posts every pk.
    pks = list(queryset.order_by("pk").values_list("pk", flat=True)[: 1 if across else None])
    estimate = progress.estimate(kind=operation, count=count)
    context.update(
        selected_pks=pks,
        background=True,
        expected=estimate.expected,
        rate_per_minute=estimate.rate_per_minute,
        requests_per_item=estimate.requests_per_item,
        concurrency=estimate.concurrency,
        sync_limit=sync_limit(),
    )
    return TemplateResponse(request, "sessions_app/bulk/admin_confirm.html", context)


def start_bulk_job(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[EndUser],
    *,
    kind: str,
    toolkits: list[str] | None,
) -> HttpResponse | None:
    """Start a background job for the selection and go to its page; say why if it was not."""
    try:
        job = bulk.bulk_job_start(
            kind=kind,
            end_users=queryset,
            toolkits=toolkits,
            actor=request.user,
            request=request,
        )
    except PermissionDenied as exc:
        model_admin.message_user(request, str(exc), messages.ERROR)
        return None
    except ValidationError as exc:
        model_admin.message_user(request, " ".join(exc.messages), messages.ERROR)
        return None
    model_admin.message_user(
        request,
        ngettext(
            "Started a background job for %(n)d end user; follow it below.",
            "Started a background job for %(n)d end users; follow it below.",
            job.total,
        )
        % {"n": job.total},
        messages.SUCCESS,
    )
    return HttpResponseRedirect(reverse("admin:sessions_app_bulkjob_change", args=[job.pk]))


def _stale_rows(end_users: QuerySet[EndUser]) -> QuerySet[ToolRouterSession]:
    return (
        ToolRouterSession.objects.filter(
            end_user__in=end_users,
            status=ToolRouterSession.Status.ACTIVE,
            stale_since__isnull=False,
        )
        .select_related("end_user")
        .order_by("end_user__external_id")
    )


def recreate_missing(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    end_users: QuerySet[EndUser],
) -> HttpResponse | None:
    """Re-create the sessions Composio no longer knows (stale) of the selected end users, in a
    background job (kind `recreate`: a refresh keeping the toolkits, for stale sessions only),
    after a confirmation page. `queryset` is the admin's selection (end users or sessions),
    `end_users` the end users it stands for."""
    stale = _stale_rows(end_users)
    stale_count = stale.count()
    if not stale_count:
        model_admin.message_user(
            request,
            "None of the selected end users has a session Composio no longer knows (stale); "
            "no job was started. `manage.py verify_sessions` checks them.",
            messages.WARNING,
        )
        return None
    stale_users = EndUser.objects.filter(pk__in=stale.values("end_user"))
    if request.POST.get("post") == "yes":
        return start_bulk_job(model_admin, request, stale_users, kind="recreate", toolkits=None)
    count = queryset.count()
    rows = [(session.end_user, session) for session in stale[:10]]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Re-create missing sessions",
        "opts": model_admin.model._meta,
        "rows": rows,
        "count": count,
        "stale_count": stale_count,
        "more": max(0, stale_count - len(rows)),
        **hidden_selection(request, list(queryset)),
    }
    return TemplateResponse(request, "admin/sessions_app/recreate_sessions.html", context)
