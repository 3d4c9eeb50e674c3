"""The auditor pages' forms: the audit log's filters and the access report's questions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from sessions_app.models import AuditEvent, Toolkit
from sessions_app.validators import without_browser_limits

# The shared action names (docs/audit.md); the log's filter offers exactly these.
ACTIONS = (
    "session.create",
    "session.refresh",
    "session.change_toolkits",
    "session.delete",
    "session.remote_delete",
    "session.stale",
    "session.known_again",
    "mcp_url.reveal",
    "tool_execution.view",
    "access.refused",
    "input.rejected",
    "toolkit.allow",
    "toolkit.disallow",
    "catalog.sync",
    "enduser.import",
    "auth.login",
    "auth.login_failed",
    "auth.logout",
    "bulk.start",
    "bulk.end",
)


# The reports compute a day's end and look a year back: both must stay inside Python's calendar.
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(9999, 12, 30)


class ReportDateField(forms.DateField):
    """A UTC day between FIRST_DAY and LAST_DAY."""

    def validate(self, value: dt.date | None) -> None:
        super().validate(value)
        if value is not None and not FIRST_DAY <= value <= LAST_DAY:
            raise forms.ValidationError(
                f"Choose a date between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}.",
                code="out_of_range",
            )


class _DateRangeForm(forms.Form):
    """A range of days, `range_fields` (start, end), whose start may not follow its end."""

    range_fields: tuple[str, str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        without_browser_limits(self.fields.values())

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = (data.get(name) for name in self.range_fields)
        if start and end and start > end:
            raise forms.ValidationError("The start date is after the end date.")
        return data


# `before` comes from the "Older" link; a hand-edited one is answered, not met with an empty list.
_BEFORE_PROBLEM = (
    "The page position (before=) must be an audit event number, a whole number of at least 1; "
    "use the Older link or Clear."
)


class EventFilterForm(_DateRangeForm):
    """The audit log's filters; `before` is the keyset cursor of the "Older" link."""

    range_fields = ("date_from", "date_to")
    action = forms.ChoiceField(
        required=False, choices=[("", "Any action")] + [(a, a) for a in ACTIONS]
    )
    outcome = forms.ChoiceField(
        required=False, choices=[("", "Any outcome"), *AuditEvent.Outcome.choices]
    )
    actor = forms.CharField(required=False, max_length=150, label="Staff user")
    end_user = forms.CharField(required=False, max_length=128, label="End user (external id)")
    toolkit = forms.SlugField(required=False, max_length=100)
    date_from = ReportDateField(
        required=False, label="From (UTC)", widget=forms.DateInput({"type": "date"})
    )
    date_to = ReportDateField(
        required=False, label="To (UTC)", widget=forms.DateInput({"type": "date"})
    )
    before = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,  # the sequence column's PostgreSQL bigint
        widget=forms.HiddenInput,
        error_messages={
            "invalid": _BEFORE_PROBLEM,
            "min_value": _BEFORE_PROBLEM,
            "max_value": _BEFORE_PROBLEM,
        },
    )


class AccessFilterForm(_DateRangeForm):
    """The access report's toolkit filters."""

    range_fields = ("granted_from", "granted_to")
    allowed = forms.ChoiceField(
        required=False,
        choices=[("", "Allowed or not"), ("yes", "Allowed"), ("no", "Not allowed")],
    )
    not_in_catalog = forms.BooleanField(
        required=False, label="Only toolkits no longer in Composio's catalog"
    )
    granted_from = ReportDateField(
        required=False, label="Granted from (UTC)", widget=forms.DateInput({"type": "date"})
    )
    granted_to = ReportDateField(
        required=False, label="Granted to (UTC)", widget=forms.DateInput({"type": "date"})
    )


class PointInTimeForm(forms.Form):
    """Who had access to toolkit X on day D; `toolkit` cleans to a Toolkit the console knows."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        without_browser_limits(self.fields.values())

    toolkit = forms.SlugField(max_length=100)
    on = ReportDateField(label="On (UTC date)", widget=forms.DateInput({"type": "date"}))

    def clean_toolkit(self) -> Toolkit:
        slug = self.cleaned_data["toolkit"].lower()
        toolkit = Toolkit.objects.filter(slug=slug).first()
        if toolkit is None:
            raise forms.ValidationError(f"No toolkit {slug!r} is known to the console.")
        return toolkit
