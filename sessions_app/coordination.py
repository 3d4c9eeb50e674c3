"""Rows that coordinate processes rather than record the domain: the shared rate budget, the
per-user reveal lock and the open windows of coalesced refusals.

Models of the `sessions_app` app like those in `sessions_app.models`, which imports them (so
`from sessions_app.models import RateBudget` keeps working and the migrations are unchanged).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RateBudget(models.Model):
    """A token bucket shared by every worker (one row per budget), updated under a row lock."""

    name = models.CharField(max_length=64, unique=True)
    tokens = models.FloatField(default=0)
    # Seconds since the epoch when `tokens` was last computed.
    updated_at = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.tokens:.1f}"


class RevealLock(models.Model):
    """The lock a staff user's MCP URL reveals take (made on their first): a reveal locks it, counts
    the user's reveals in the audit trail and writes its event in one transaction, so concurrent
    reveals by one user cannot all pass the limit."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )

    def __str__(self) -> str:
        return f"reveal lock of user {self.user_id}"


class RefusalWindow(models.Model):
    """The refusals of one actor and operation in one window (REFUSAL_COALESCE_SECONDS), while it
    is open: the first is already in the audit trail, the rest only counted here until
    `sessions_app.refusals` closes the window with one summary event and deletes this row."""

    actor_key = models.CharField(max_length=40)  # "user:<pk>", or "anonymous"
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    operation = models.CharField(max_length=200)
    window_start = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField(default=1)  # refusals in the window, the first included
    # The latest refusal's reason and details (missing, target, method, path), for the summary.
    last_reason = models.CharField(max_length=500, blank=True)
    last_details = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["actor_key", "operation", "window_start"], name="refusalwindow_one_per_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.actor_key} {self.operation} from {self.window_start:%H:%M:%S}: {self.count}"
