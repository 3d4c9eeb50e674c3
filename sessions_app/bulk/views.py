"""The bulk job pages of the console: list, job page with live progress, failures CSV, cancel,
retry. For Session admins (see `bulk.may_see_jobs`); cancel and retry need the job's permission.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from sessions_app import access, csv_export
from sessions_app.access import refusal_response, wants_fragment
from sessions_app.bulk import job_page, progress
from sessions_app.bulk import jobs as bulk
from sessions_app.http import HtmxHttpRequest
from sessions_app.models import BulkJob
from sessions_app.tool_router.mcp_url import mask_ids_in

View = Callable[..., HttpResponse]

# The failures download: one row per failed or unknown item (see `progress.failed_items`).
FAILURE_COLUMNS = ("external_id", "state", "attempts", "last_error", "finished_at")


def bulk_access_required(view: View) -> View:
    """Anonymous -> login; not a Session admin -> 403 (audited); otherwise the view."""

    @wraps(view)
    def wrapper(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not bulk.may_see_jobs(request.user):
            refused = access.refuse(
                operation="bulk.view",
                reason="Bulk jobs are for session admins.",
                request=request,
                missing=access.missing(request.user, bulk.SEE_JOBS_PERMISSIONS),
            )
            return access.refusal_response(request, refused)
        return view(request, *args, **kwargs)

    return wrapper


def _get_job(public_id: UUID) -> BulkJob:
    try:
        return BulkJob.objects.get(public_id=public_id)
    except BulkJob.DoesNotExist:
        raise Http404("No such bulk job.") from None


@require_GET
@bulk_access_required
def bulk_job_list(request: HtmxHttpRequest) -> HttpResponse:
    jobs = BulkJob.objects.order_by("-created_at")[:50]
    return render(request, "sessions_app/bulk/job_list.html", {"jobs": jobs})


@require_GET
@bulk_access_required
def bulk_job_detail(request: HtmxHttpRequest, public_id: UUID) -> HttpResponse:
    job = _get_job(public_id)
    response = render(
        request, "sessions_app/bulk/job_detail.html", job_page.job_context(request, job)
    )
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_GET
@bulk_access_required
def bulk_job_progress(request: HtmxHttpRequest, public_id: UUID) -> HttpResponse:
    """The live part of a job page (progress, actions, the page of items) HTMX polls, for the
    console's page and the admin's (`next`: the page its forms return to); it stops polling by
    leaving out its trigger once the job has ended. Without HTMX, the job page."""
    job = _get_job(public_id)
    if not wants_fragment(request):
        return redirect("bulk:job_detail", public_id=job.public_id)
    back_url = job_page.back_url_from(request)
    context = job_page.job_context(request, job, back_url=back_url)
    # The admin's job page sits in the admin's plain modules, the console's in cards.
    context["section_class"] = "" if back_url.startswith(reverse("admin:index")) else "card"
    response = render(request, "sessions_app/bulk/_live.html", context)
    patch_vary_headers(response, ("HX-Request",))
    add_never_cache_headers(response)
    return response


@require_GET
@bulk_access_required
def bulk_job_failures_csv(request: HtmxHttpRequest, public_id: UUID) -> StreamingHttpResponse:
    """The job's failed and unknown items as a streamed, formula-safe CSV download."""
    job = _get_job(public_id)
    # Exports leave the console: a session id an error names is masked (`mcp_url.mask_ids_in`).
    failed = (
        (external_id, state, attempts, mask_ids_in(error), finished_at)
        for external_id, state, attempts, error, finished_at in progress.failed_items(job)
    )
    rows = csv_export.csv_lines(FAILURE_COLUMNS, failed)
    response = StreamingHttpResponse(rows, content_type="text/csv")
    response["Content-Disposition"] = (
        f'attachment; filename="bulk-{job.kind}-{str(job.public_id)[:8]}-failures.csv"'
    )
    add_never_cache_headers(response)
    return response


def _act(
    request: HtmxHttpRequest,
    public_id: UUID,
    act: Callable[[BulkJob], str | None],
    *,
    nothing_done: str = "",
) -> HttpResponse:
    """Run a job action; its refusal is the console's 403, a bad state a message, an action
    that found nothing to do says `nothing_done`, and the answer goes back to the page that
    asked."""
    job = _get_job(public_id)
    try:
        done = act(job)
    except PermissionDenied as exc:
        return refusal_response(request, exc)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if done:
            messages.success(request, done)
        else:
            messages.warning(request, nothing_done)
    return redirect(_back(request, job))


@require_POST
@bulk_access_required
def bulk_job_cancel(request: HtmxHttpRequest, public_id: UUID) -> HttpResponse:
    def cancel(job: BulkJob) -> str:
        skipped = bulk.bulk_job_cancel(job=job, actor=request.user, request=request)
        return (
            f"Cancelled: {skipped} users not started yet are skipped; "
            "calls already under way finish."
        )

    return _act(request, public_id, cancel)


@require_POST
@bulk_access_required
def bulk_job_retry(request: HtmxHttpRequest, public_id: UUID) -> HttpResponse:
    def retry(job: BulkJob) -> str | None:
        count = bulk.bulk_job_retry_failed(job=job, actor=request.user, request=request)
        return f"Retrying {count} failed users." if count else None

    return _act(
        request,
        public_id,
        retry,
        nothing_done="No failed users to retry (unknown ones are never re-sent).",
    )


def _back(request: HtmxHttpRequest, job: BulkJob) -> str:
    """Where cancel and retry return: the page that posted (`next`, same host only), else the
    console's job page."""
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return back
    return job_url(job)


def job_url(job: BulkJob) -> str:
    return reverse("bulk:job_detail", kwargs={"public_id": job.public_id})
