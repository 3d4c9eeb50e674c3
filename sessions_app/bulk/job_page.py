"""What a bulk job's page shows, in the console and in the admin: progress, filter, a page of
items, and whether the viewer may cancel or retry."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from sessions_app.bulk import jobs as bulk
from sessions_app.bulk import progress
from sessions_app.models import BulkJob, BulkJobItem

ITEMS_PER_PAGE = 100


def back_url_from(request: HttpRequest) -> str:
    """The page a polled fragment belongs to (`next`), if it is on this site; else ""."""
    back = request.GET.get("next", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return back
    return ""


def job_context(request: HttpRequest, job: BulkJob, *, back_url: str = "") -> dict[str, Any]:
    """What the job page shows (the console's and the admin's): progress, filter, items page,
    and the query the page polls its live part with (the same filter, page and `back_url`)."""
    state = request.GET.get("state", "")
    if state not in BulkJobItem.State.values:
        state = ""
    items = job.items.select_related("end_user", "session").order_by("id")
    if state:
        items = items.filter(state=state)
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    job_progress = progress.bulk_job_progress(job)
    live = {"state": state, "page": page.number if page.number > 1 else "", "next": back_url}
    return {
        "back_url": back_url,
        "live_query": urlencode({k: v for k, v in live.items() if v}),
        "job": job,
        "progress": job_progress,
        "state_filter": state,
        "states": BulkJobItem.State.choices,
        "page": page,
        "may_act": bulk.may_run(request.user, job.kind),
        "requests_per_item": progress.requests_per_item(job.kind),
    }
