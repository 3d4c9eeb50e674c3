"""What a bulk job's page shows, in the console and in the admin: progress, filter, a page of
items, and whether the viewer may cancel or retry."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest

from sessions_app.bulk import jobs as bulk
from sessions_app.bulk import progress
from sessions_app.models import BulkJob, BulkJobItem

ITEMS_PER_PAGE = 100


def job_context(request: HttpRequest, job: BulkJob) -> dict[str, Any]:
    """What the job page shows (the console's and the admin's): progress, filter, items page."""
    state = request.GET.get("state", "")
    if state not in BulkJobItem.State.values:
        state = ""
    items = job.items.select_related("end_user", "session").order_by("id")
    if state:
        items = items.filter(state=state)
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    job_progress = progress.bulk_job_progress(job)
    return {
        "job": job,
        "progress": job_progress,
        "state_filter": state,
        "states": BulkJobItem.State.choices,
        "page": page,
        "may_act": bulk.may_run(request.user, job.kind),
        "requests_per_item": progress.requests_per_item(job.kind),
    }
