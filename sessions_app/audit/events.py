"""Read queries of the audit log page (no writes): the events its filters select."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from sessions_app.audit.reports import day_bounds
from sessions_app.models import AuditEvent


def _first_sequence(events: QuerySet[AuditEvent], *order: str) -> int | None:
    """The sequence of the first of `events` in `order` (None if there is none)."""
    return events.order_by(*order).values_list("sequence", flat=True).first()


def filtered_events(filters: dict[str, Any]) -> QuerySet[AuditEvent]:
    """The events matching the audit log's filters (EventFilterForm's cleaned data), newest
    first; `before` keeps only those older than that sequence (the "Older" page)."""
    events = AuditEvent.objects.all()
    if filters.get("action"):
        events = events.filter(action=filters["action"])
    if filters.get("outcome"):
        events = events.filter(outcome=filters["outcome"])
    if filters.get("actor"):
        events = events.filter(actor_username=filters["actor"].strip())
    if filters.get("end_user"):
        events = events.filter(end_user_external_id=filters["end_user"].strip())
    if filters.get("toolkit"):
        events = events.filter(toolkit_slugs__contains=f" {filters['toolkit'].lower()} ")
    # `trail.record` keeps created_at in chain order, so a date range is a sequence range:
    # two index lookups, then every filter walks its (field, -sequence) index.
    if filters.get("date_from"):
        start = day_bounds(filters["date_from"])[0]
        first = _first_sequence(
            AuditEvent.objects.filter(created_at__gte=start), "created_at", "sequence"
        )
        events = events.filter(sequence__gte=first) if first else events.none()
    if filters.get("date_to"):
        end = day_bounds(filters["date_to"])[1]
        last = _first_sequence(
            AuditEvent.objects.filter(created_at__lt=end), "-created_at", "-sequence"
        )
        events = events.filter(sequence__lte=last) if last else events.none()
    if filters.get("before"):
        events = events.filter(sequence__lt=filters["before"])
    return events.order_by("-sequence")
