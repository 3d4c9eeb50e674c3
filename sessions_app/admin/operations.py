"""Session operations in the admin: the intents recorded before each call to Composio."""

from __future__ import annotations

from django.contrib import admin

from sessions_app.admin.safety import ReadOnlyAdminMixin
from sessions_app.models import SessionOperation


@admin.register(SessionOperation)
class SessionOperationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The intents recorded before each call to Composio; `unknown` ones need reconciling."""

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
    ]
