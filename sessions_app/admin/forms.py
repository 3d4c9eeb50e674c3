"""Forms of the session admin: toolkit choice, end-user edit, CSV import."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from sessions_app.models import EndUser, Toolkit
from sessions_app.tool_router import toolkit_catalog
from sessions_app.validators import without_browser_limits


def toolkit_groups(
    toolkits: Iterable[Toolkit], selected: Iterable[str]
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Toolkits grouped by their first catalog category, for the filterable checkbox list."""
    chosen = set(selected)
    groups: dict[str, list[dict[str, Any]]] = {}
    for toolkit in toolkits:
        category = (toolkit.categories[0] if toolkit.categories else "other").strip() or "other"
        groups.setdefault(category.capitalize(), []).append(
            {
                "slug": toolkit.slug,
                "name": toolkit.name,
                "checked": toolkit.slug in chosen,
                "search": " ".join(
                    [toolkit.slug, toolkit.name, *[str(c) for c in toolkit.categories]]
                ).lower(),
            }
        )
    return sorted(groups.items(), key=lambda item: (item[0] == "Other", item[0]))


class SessionToolkitsForm(forms.Form):
    """The toolkits to give a session: the allowed toolkits of Composio's catalog.

    The field accepts any posted value; `clean` runs the one validator
    (`toolkit_catalog.toolkit_choices_clean`) so a crafted slug gets the same clear message as any
    other bad choice, and `crafted` says whether something outside the offered choices was posted.
    """

    toolkits = forms.MultipleChoiceField(required=False)

    def __init__(self, *args: Any, keep_current_option: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.offered = list(
            Toolkit.objects.filter(is_allowed=True, in_catalog=True).order_by("name", "slug")
        )
        self.fields["toolkits"].choices = [(t.slug, t.name) for t in self.offered]
        # Every posted value reaches `clean`, which explains what is wrong with it.
        self.fields["toolkits"].valid_value = lambda value: True  # type: ignore[method-assign]
        if keep_current_option:
            self.fields["keep_current"] = forms.BooleanField(
                required=False,
                label="Keep each user's current toolkits (ignore the choice below)",
            )

    @property
    def crafted(self) -> bool:
        offered = {t.slug for t in self.offered}
        return any(value not in offered for value in self.data.getlist("toolkits"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("keep_current"):
            cleaned["toolkits"] = None
            return cleaned
        try:
            cleaned["toolkits"] = toolkit_catalog.toolkit_choices_clean(
                self.data.getlist("toolkits") if hasattr(self.data, "getlist") else []
            )
        except ValidationError as error:
            self.add_error("toolkits", error)
        return cleaned

    def groups(self, selected: Iterable[str]) -> list[tuple[str, list[dict[str, Any]]]]:
        if self.is_bound:
            selected = self.data.getlist("toolkits")
        return toolkit_groups(self.offered, selected)


class EndUserAdminForm(forms.ModelForm):
    class Meta:
        model = EndUser
        fields = ["external_id", "display_name", "email"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        without_browser_limits(self.fields.values())


class EndUserImportForm(forms.Form):
    csv_file = forms.FileField(
        label="CSV file",
        help_text="Columns: external_id, name, email (a header row with these names first). "
        "UTF-8, at most 2 MB.",
    )
