"""Auditor pages: the audit log and the toolkit access report, each with a streamed CSV export.

The pages show session ids through `{% locator %}` (in full only to staff who may reveal MCP
URLs); the CSV exports leave the console, so every session id in them is masked.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from sessions_app.access import permission_required
from sessions_app.audit import charts, point_in_time, reports
from sessions_app.audit.events import filtered_events
from sessions_app.audit.forms import AccessFilterForm, EventFilterForm, PointInTimeForm
from sessions_app.csv_export import Columns, csv_response
from sessions_app.models import AuditEvent, Toolkit
from sessions_app.tool_router import locators
from sessions_app.tool_router.mcp_url import mask_ids_in, masked_id_text

LOG_PAGE_SIZE = 50
REPORT_PAGE_SIZE = 100


# --- The audit log ----------------------------------------------------------------------------


EVENT_CSV_HEADER = [
    "sequence",
    "time_utc",
    "action",
    "outcome",
    "staff_user",
    "ip_address",
    "request_id",
    "end_user",
    "session",
    "toolkits",
    "reason",
    "details",
    "row_hash",
]


def _event_row(event: AuditEvent) -> list[object]:
    # Exports leave the console: every session id in them is masked, whoever downloads them.
    named = locators.event_ids(event.session_ref, event.details)
    return [
        event.sequence,
        event.created_at,
        event.action,
        event.outcome,
        event.actor_username,
        event.ip_address,
        event.request_id,
        event.end_user_external_id,
        masked_id_text(event.session_ref),
        event.toolkit_slugs.strip(),
        mask_ids_in(event.reason, named),
        json.dumps(
            locators.masked_details(event.details, named), sort_keys=True, ensure_ascii=False
        ),
        event.row_hash,
    ]


@permission_required("sessions_app.view_auditevent")
def event_list(request: HttpRequest) -> HttpResponse:
    form = EventFilterForm(request.GET or None)
    valid = form.is_valid() if request.GET else True
    data = form.cleaned_data if request.GET and valid else {}
    if request.GET.get("export") == "csv" and valid:
        events = filtered_events(data)
        return csv_response(
            "audit-events.csv",
            EVENT_CSV_HEADER,
            (_event_row(e) for e in events.iterator(chunk_size=2000)),
        )
    page: list[AuditEvent] = []
    older: int | None = None
    if valid:
        events = filtered_events(data)
        # One row more than a page tells whether there is an older page, without a COUNT.
        page = list(events[: LOG_PAGE_SIZE + 1])
        if len(page) > LOG_PAGE_SIZE:
            page = page[:LOG_PAGE_SIZE]
            older = page[-1].sequence
    query = request.GET.copy()
    query.pop("before", None)
    query.pop("export", None)
    return render(
        request,
        "audit/events.html",
        {
            "form": form,
            "events": page,
            "older": older,
            "filter_query": query.urlencode(),
            "paged": bool(request.GET.get("before")),
        },
    )


# --- The access report ------------------------------------------------------------------------


# Every column of the access report's CSVs by header, read from the row of any export that has it.
ACCESS_CELLS: dict[str, Callable[[Any], object]] = {
    "toolkit": attrgetter("slug"),
    "name": attrgetter("name"),
    "end_users": attrgetter("users"),
    "allowed": lambda row: "yes" if row.is_allowed else "no",
    "in_catalog": lambda row: "yes" if row.in_catalog else "no",
    "flag": lambda row: row.problem if row.flagged else "",
    "end_user": attrgetter("external_id"),
    "session": lambda row: masked_id_text(row.session_id),
    "session_created_utc": attrgetter("session_created_at"),
    "since_utc": attrgetter("since"),
    "from_utc": attrgetter("from_at"),
    "until_utc": attrgetter("until"),
    "granted_by": attrgetter("granted_by"),
    "toolkits": lambda row: " ".join(row.toolkits),
}
TOOLKIT_CSV = Columns(ACCESS_CELLS, "toolkit", "name", "end_users", "allowed", "in_catalog", "flag")
POINT_CSV = Columns(ACCESS_CELLS, "end_user", "session", "from_utc", "until_utc", "granted_by")
HOLDER_CSV = Columns(
    ACCESS_CELLS, "end_user", "session", "session_created_utc", "since_utc", "granted_by"
)
USER_CSV = Columns(
    ACCESS_CELLS, "end_user", "session", "session_created_utc", "granted_by", "toolkits"
)


@permission_required("sessions_app.view_access_report")
def access_report(request: HttpRequest) -> HttpResponse:
    filters = AccessFilterForm(request.GET if _has_any(request, AccessFilterForm) else None)
    point = PointInTimeForm(request.GET if _has_any(request, PointInTimeForm) else None)
    data = filters.cleaned_data if filters.is_bound and filters.is_valid() else {}
    filters_ok = not filters.is_bound or filters.is_valid()
    rows: list[reports.ToolkitAccess] = []
    dated = bool(data.get("granted_from") or data.get("granted_to"))
    # One query: every toolkit's users (for the flagged list) and, with a date range, those
    # granted in it (for the table).
    counts, dated_counts = (
        reports.active_counts_with_range(data.get("granted_from"), data.get("granted_to"))
        if dated
        else (reports.active_counts(), None)
    )
    if filters_ok:
        rows = reports.toolkit_access(
            counts=dated_counts if dated else counts,
            allowed={"yes": True, "no": False}.get(data.get("allowed") or ""),
            not_in_catalog=bool(data.get("not_in_catalog")),
            granted_from=data.get("granted_from"),
            granted_to=data.get("granted_to"),
        )
    past: list[point_in_time.PastAccess] | None = None
    if point.is_bound and point.is_valid():
        past = point_in_time.access_on(
            toolkit=point.cleaned_data["toolkit"], day=point.cleaned_data["on"]
        )

    export = request.GET.get("export")
    if export == "toolkits" and filters_ok:
        return TOOLKIT_CSV.response("toolkit-access.csv", rows)
    if export == "point_in_time" and past is not None:
        toolkit, day = point.cleaned_data["toolkit"], point.cleaned_data["on"]
        return POINT_CSV.response(f"access-{toolkit.slug}-{day.isoformat()}.csv", past)

    first_day, last_day = reports.default_chart_range()
    if data.get("granted_from") and data.get("granted_to"):
        first_day, last_day = data["granted_from"], data["granted_to"]
        first_day = max(first_day, last_day - dt.timedelta(days=365))
    days = reports.grants_and_revocations(first_day=first_day, last_day=last_day)
    query = request.GET.copy()
    query.pop("export", None)
    return render(
        request,
        "audit/access.html",
        {
            "filters": filters,
            "point": point,
            "flagged": reports.flagged_toolkits(counts),
            "changed_outside": reports.changed_outside(),
            "rows": rows,
            "past": past,
            "past_users": len({row.external_id for row in past or []}),
            "users_chart": charts.users_per_toolkit_svg(rows),
            "grants_chart": charts.grants_over_time_svg(days),
            "chart_first_day": first_day,
            "chart_last_day": last_day,
            "grants_total": sum(d.grants for d in days),
            "revocations_total": sum(d.revocations for d in days),
            "query": query.urlencode(),
            "now": timezone.now(),
        },
    )


def _has_any(request: HttpRequest, form: type[forms.Form]) -> bool:
    return any(name in request.GET for name in form.base_fields)


def _page_number(request: HttpRequest) -> int:
    try:
        return max(1, min(int(request.GET.get("page", "1")), 100_000))
    except ValueError:
        return 1


@permission_required("sessions_app.view_access_report")
def access_toolkit(request: HttpRequest, slug: str) -> HttpResponse:
    toolkit = get_object_or_404(Toolkit, slug=slug)
    if request.GET.get("export") == "csv":
        return HOLDER_CSV.response(
            f"access-{toolkit.slug}.csv", reports.toolkit_holders(toolkit=toolkit)
        )
    page = _page_number(request)
    total = reports.toolkit_holder_count(toolkit=toolkit)
    holders = list(
        reports.toolkit_holders(
            toolkit=toolkit, limit=REPORT_PAGE_SIZE, offset=(page - 1) * REPORT_PAGE_SIZE
        )
    )
    return render(
        request,
        "audit/access_toolkit.html",
        {
            "toolkit": toolkit,
            "holders": holders,
            "total": total,
            "page": page,
            "previous_page": page - 1 if page > 1 else None,
            "next_page": page + 1 if page * REPORT_PAGE_SIZE < total else None,
        },
    )


@permission_required("sessions_app.view_access_report")
def access_users(request: HttpRequest) -> HttpResponse:
    if request.GET.get("export") == "csv":
        return USER_CSV.response("access-by-user.csv", reports.user_access())
    page = _page_number(request)
    total = reports.active_session_count()
    users = list(reports.user_access(limit=REPORT_PAGE_SIZE, offset=(page - 1) * REPORT_PAGE_SIZE))
    return render(
        request,
        "audit/access_users.html",
        {
            "users": users,
            "total": total,
            "page": page,
            "previous_page": page - 1 if page > 1 else None,
            "next_page": page + 1 if page * REPORT_PAGE_SIZE < total else None,
        },
    )
