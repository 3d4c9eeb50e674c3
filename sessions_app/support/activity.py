"""The support card's activity: recent tool executions (from Composio's execution log) and the
user's timeline (from the audit trail). Each is an HTMX fragment of the card and, without
JavaScript, the whole card with that part filled in.

Both need what opening the card needs (the Support permissions): they show support what the
user's agent did and who touched the user's session, the evidence a support agent needs to
answer "my Gmail stopped working". An execution's content is redacted, and opening one is
audited (`tool_execution.view`) by the service.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from uuid import UUID

from django import forms
from django.http import HttpResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_POST

from sessions_app.access import support_required, wants_fragment
from sessions_app.http import HtmxHttpRequest
from sessions_app.models import EndUser
from sessions_app.support import views as card_views
from sessions_app.tool_router import execution_logs, timeline

# Whoever may read the audit log gets the timeline's link to it (the card's context says so).
AUDIT_LOG_PERMISSION = "sessions_app.view_auditevent"


class ExecutionFilterForm(forms.Form):
    scope = forms.ChoiceField(
        required=False,
        choices=[
            (execution_logs.SCOPE_SESSION, "This session"),
            (execution_logs.SCOPE_ALL, "All of the user's sessions"),
        ],
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), *((s, s) for s in execution_logs.STATUSES)],
    )
    toolkit = forms.SlugField(required=False, max_length=100)
    cursor = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def filters(self) -> execution_logs.ExecutionFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return execution_logs.ExecutionFilters(
            scope=data.get("scope") or execution_logs.SCOPE_SESSION,
            status=data.get("status") or "",
            toolkit=(data.get("toolkit") or "").lower(),
            cursor=data.get("cursor") or "",
        )


def _card_page(
    request: HtmxHttpRequest,
    *,
    end_user: EndUser,
    fragment: str,
    context: dict[str, Any],
    status: int = HTTPStatus.OK,
) -> HttpResponse:
    """`fragment` for HTMX; otherwise the whole card with `context` filled in."""
    full = card_views._card_context(request, end_user)
    response = card_views._respond(
        request,
        page="sessions_app/lookup.html",
        fragment=fragment,
        context={**full, **context, "end_user": end_user},
        status=status,
    )
    add_never_cache_headers(response)
    return response


def _status_for(error: str, retry_after: int | None, *, not_found: bool = False) -> int:
    if not error:
        return HTTPStatus.OK
    if not_found:
        return HTTPStatus.NOT_FOUND
    if retry_after is not None:
        return HTTPStatus.TOO_MANY_REQUESTS
    return HTTPStatus.BAD_GATEWAY


def _with_retry_after(response: HttpResponse, retry_after: int | None) -> HttpResponse:
    if retry_after is not None and response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
        response["Retry-After"] = str(retry_after)
    return response


@require_GET
@support_required()
def support_user_executions(request: HtmxHttpRequest, public_id: UUID) -> HttpResponse:
    """The user's recent tool executions, filtered and paged, with the last 24 hours' chart."""
    end_user = card_views._get_end_user(public_id)
    form = ExecutionFilterForm(request.GET)
    executions = execution_logs.recent_executions(
        end_user=end_user, filters=form.filters(), request=request
    )
    response = _card_page(
        request,
        end_user=end_user,
        fragment="sessions_app/support/_executions.html",
        context={"executions": executions, "execution_form": form},
        status=_status_for(executions.error, executions.retry_after),
    )
    return _with_retry_after(response, executions.retry_after)


@require_POST
@support_required()
def support_execution_detail(
    request: HtmxHttpRequest, public_id: UUID, log_id: str
) -> HttpResponse:
    """One execution in full, secrets redacted. A POST, like a reveal: opening one is audited
    (`tool_execution.view`), and a GET writes nothing."""
    end_user = card_views._get_end_user(public_id)
    detail = execution_logs.execution_detail(
        end_user=end_user, log_id=log_id, actor=request.user, request=request
    )
    response = _card_page(
        request,
        end_user=end_user,
        fragment="sessions_app/support/_execution_detail.html",
        context={"execution": detail, "log_id": log_id},
        status=_status_for(detail.error, detail.retry_after, not_found=detail.not_found),
    )
    return _with_retry_after(response, detail.retry_after)


class TimelinePageForm(forms.Form):
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


@require_GET
@support_required()
def support_user_timeline(request: HtmxHttpRequest, public_id: UUID) -> HttpResponse:
    """The user's timeline from `before` (the "Older" link) on."""
    end_user = card_views._get_end_user(public_id)
    form = TimelinePageForm(request.GET)
    before = form.cleaned_data.get("before") if form.is_valid() else None
    page = timeline.end_user_timeline(end_user=end_user, before=before)
    context = {"timeline": page, "can_view_audit_log": request.user.has_perm(AUDIT_LOG_PERMISSION)}
    if wants_fragment(request):
        return card_views._respond(
            request,
            page="sessions_app/lookup.html",
            fragment="sessions_app/support/_timeline.html",
            context={**context, "end_user": end_user},
        )
    return _card_page(
        request, end_user=end_user, fragment="sessions_app/support/_timeline.html", context=context
    )
