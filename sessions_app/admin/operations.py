"""Session operations in the admin: the intents recorded before each call to Composio."""

from __future__ import annotations

from django.contrib import admin

from sessions_app.admin.locators import LocatorColumn, LocatorColumnsMixin, session_id_of, text_of
from sessions_app.admin.safety import ReadOnlyAdminMixin
from sessions_app.models import SessionOperation


@admin.register(SessionOperation)
class SessionOperationAdmin(ReadOnlyAdminMixin, LocatorColumnsMixin, admin.ModelAdmin):
    """The intents recorded before each call to Composio; `unknown` ones need reconciling.

    The remote session id, and the error and resolution that may name it, show as the viewing
    user may see them (`admin.locators`).
    """

    class Media:
        # Wide tables scroll inside their module; long ids wrap (issue 15).
        css = {"all": ["admin_console.css"]}

    locator_columns = {
        "remote_session_id": LocatorColumn("remote session id", session_id_of("remote_session_id")),
        "error": LocatorColumn("error", text_of("error", "remote_session_id")),
        "resolution": LocatorColumn("resolution", text_of("resolution", "remote_session_id")),
    }

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
        "resolution",
        "resolved_at",
    ]
    # Every field is shown read-only, and none is left to a form that would show it raw.
    fields = readonly_fields
