"""The Django admin of the console; importing the package registers every ModelAdmin."""

from __future__ import annotations

from sessions_app.admin import (  # noqa: F401
    audit,
    bulk_jobs,
    end_users,
    operations,
    sessions,
    signin,
    toolkits,
)
