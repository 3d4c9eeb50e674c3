"""The Django admin of the console; importing the package registers every ModelAdmin."""

from __future__ import annotations

from sessions_app.admin import audit, bulk_jobs, models_admin  # noqa: F401
