"""The console's records: end users, their Tool Router sessions, the toolkit catalog, the audit.
Composio cannot list sessions: only these tables say which session belongs to which end user."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils.translation import ngettext

from sessions_app.coordination import RateBudget, RefusalWindow, RevealLock
from sessions_app.validators import EXTERNAL_ID_MAX_LENGTH, validate_external_id

# The rows that coordinate processes live in sessions_app.coordination; they are models of this
# app all the same (same app label, same migrations) and importable from here.
__all__ = [
    "AuditEvent",
    "AuditEventQuerySet",
    "AuditLogIsAppendOnly",
    "BulkJob",
    "BulkJobItem",
    "EndUser",
    "RateBudget",
    "RefusalWindow",
    "RevealLock",
    "SessionOperation",
    "SessionToolkit",
    "Toolkit",
    "ToolRouterSession",
    "ToolkitDailyRollup",
]


class EndUser(models.Model):
    """A real person in the company's product; `external_id` is sent to Composio as `user_id`."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    external_id = models.CharField(
        max_length=EXTERNAL_ID_MAX_LENGTH,
        unique=True,
        validators=[validate_external_id],
        help_text="The stable id sent to Composio as user_id. 1-128 visible ASCII characters, "
        "never 'default'.",
    )
    display_name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]
        indexes = [models.Index(Lower("email"), name="enduser_email_lower_idx")]

    def __str__(self) -> str:
        return self.external_id


class Toolkit(models.Model):
    """One toolkit of Composio's catalog. Never deleted: vanished ones get in_catalog=False."""

    slug = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    auth_schemes = models.JSONField(default=list, blank=True)
    no_auth = models.BooleanField(default=False)
    categories = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True)
    is_allowed = models.BooleanField(
        default=False, help_text="On the company allow-list: admins may grant it to sessions."
    )
    in_catalog = models.BooleanField(
        default=True, help_text="False once Composio's catalog no longer lists it."
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=Q(slug=Lower("slug")), name="toolkit_slug_lowercase"),
        ]
        permissions = [
            ("manage_toolkit_allowlist", "Can allow or disallow toolkits"),
            ("sync_toolkit_catalog", "Can sync the toolkit catalog from Composio"),
        ]

    def __str__(self) -> str:
        return self.slug


class ToolRouterSession(models.Model):
    """A Composio Tool Router session of one end user. At most one is active per end user."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUPERSEDED = "superseded", "Superseded"
        DELETED = "deleted", "Deleted"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    end_user = models.ForeignKey(EndUser, on_delete=models.PROTECT, related_name="sessions")
    session_id = models.CharField(max_length=128, unique=True)
    mcp_url = models.URLField(max_length=500)
    mcp_type = models.CharField(max_length=16, default="http")
    toolkits = models.JSONField(default=list, help_text="The validated toolkit slugs it enables.")
    toolkit_links = models.ManyToManyField(
        Toolkit, through="SessionToolkit", related_name="sessions", blank=True
    )
    config_version = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaced_by"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    superseded_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Deleting a superseded session at Composio is best effort; a failure is kept here and retried.
    remote_deleted_at = models.DateTimeField(null=True, blank=True)
    remote_delete_error = models.CharField(max_length=500, blank=True)
    # Drift (`tool_router.drift`): when Composio last answered for the session, and since when
    # it says it does not know it (deleted in its dashboard, expired, or another API key).
    verified_at = models.DateTimeField(null=True, blank=True)
    stale_since = models.DateTimeField(null=True, blank=True)
    # Config history (`tool_router.config_history`): the versions of Composio's record of the
    # session's configuration that no audit event explains (changed outside the console), as
    # [{"version", "created_at", "toolkits"}], and when the reading that stored them was.
    config_checked_at = models.DateTimeField(null=True, blank=True)
    config_unexplained = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["end_user"],
                condition=Q(status="active"),
                name="one_active_session_per_end_user",
            ),
        ]
        indexes = [
            models.Index(fields=["end_user", "-created_at"], name="session_user_created_idx"),
            models.Index(fields=["status", "-created_at"], name="session_status_created_idx"),
            # The access report's date ranges and its rollup rebuild: sessions created, and
            # ended, in a range of days.
            models.Index(fields=["created_at"], name="session_created_idx"),
            models.Index(fields=["superseded_at"], name="session_superseded_idx"),
            models.Index(fields=["deleted_at"], name="session_deleted_idx"),
            # The access report's sessions changed outside the console: the few with a config
            # version no audit event explains, most recently checked first.
            models.Index(
                fields=["-config_checked_at", "id"],
                condition=Q(config_checked_at__isnull=False) & ~Q(config_unexplained=[]),
                name="session_changed_outside_idx",
            ),
            # verify_sessions walks the active sessions oldest-verified first.
            models.Index(
                fields=["status", "verified_at", "id"], name="session_status_verified_idx"
            ),
        ]
        permissions = [
            ("reveal_mcp_url", "Can reveal the full MCP URL of a session"),
            ("create_session", "Can create Tool Router sessions"),
            ("refresh_session", "Can refresh (replace) Tool Router sessions"),
            ("change_session_toolkits", "Can change a session's toolkits in place"),
            ("delete_session", "Can delete Tool Router sessions"),
            ("create_connect_link", "Can send an end user a link to reconnect a toolkit"),
            ("change_connected_account", "Can enable or disable an end user's connected account"),
        ]

    def __str__(self) -> str:
        # Neither the MCP URL nor the session id (which rebuilds it): __str__ ends up in logs,
        # admin titles, breadcrumbs, inlines and relation fields, whoever looks. Pages show the
        # id through `tool_router.locators`, in full only to staff who may reveal MCP URLs.
        return f"session #{self.pk} ({self.status})"

    @property
    def is_stale(self) -> bool:
        """Composio said it does not know this (active) session; see `tool_router.drift`."""
        return self.stale_since is not None and self.status == self.Status.ACTIVE


class SessionToolkit(models.Model):
    """A toolkit granted by a session: the normalised form of `ToolRouterSession.toolkits`."""

    session = models.ForeignKey(ToolRouterSession, on_delete=models.CASCADE)
    # Indexed with the session (below), not alone.
    toolkit = models.ForeignKey(Toolkit, on_delete=models.PROTECT, db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "toolkit"], name="session_toolkit_unique"),
        ]
        indexes = [
            # A toolkit's sessions from the index alone (the access report's point in time and
            # holders), then each session by its key.
            models.Index(fields=["toolkit", "session"], name="sessiontoolkit_toolkit_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}:{self.toolkit_id}"


class AttentionState(models.Model):
    """What the attention sweep (`tool_router.attention`) last found about one end user: why
    they need support's attention, in words (`reasons`: [{"kind", "text"}], empty when nothing),
    the time of their most recent problem (`problem_at`, None when none) and when Composio was
    last asked (`checked_at`: the sweep's place, oldest first). The support page reads only this."""

    end_user = models.OneToOneField(EndUser, on_delete=models.CASCADE, related_name="attention")
    reasons = models.JSONField(default=list, blank=True)
    problem_at = models.DateTimeField(null=True, blank=True)
    failed_executions = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The page: most recent problem first, paged; the landing count walks the same index.
            models.Index(
                F("problem_at").desc(),
                F("id").desc(),
                condition=Q(problem_at__isnull=False),
                name="attention_problem_idx",
            ),
            models.Index(fields=["checked_at", "id"], name="attention_checked_idx"),
        ]

    def __str__(self) -> str:
        return f"attention of end user #{self.end_user_id}"


class ToolkitDailyRollup(models.Model):
    """Per UTC day and toolkit: (end user, toolkit) grants that began and ended that day, and the
    active sessions created that day that hold the toolkit, as the access report counts them
    (`tool_router.rollups`). Written in the transactions that create, supersede, change and
    delete sessions; `manage.py rebuild_rollups` recomputes it."""

    day = models.DateField()
    toolkit = models.ForeignKey(Toolkit, on_delete=models.PROTECT, related_name="+")
    grants = models.IntegerField(default=0)
    revocations = models.IntegerField(default=0)
    active = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "toolkit"], name="rollup_day_toolkit_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.toolkit_id}: +{self.grants} -{self.revocations}"


class SessionOperation(models.Model):
    """The intent behind one call to Composio, committed before the call: if the process dies or
    the local commit fails after Composio acted, it still says what was asked and (once known)
    which remote session resulted, so reconciliation can adopt or delete it, orphaning nothing."""

    class Kind(models.TextChoices):
        CREATE = "create", "Create"
        REFRESH = "refresh", "Refresh"
        CHANGE_TOOLKITS = "change_toolkits", "Change toolkits"
        DELETE = "delete", "Delete"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Unknown outcome"
        RESOLVED = "resolved", "Resolved by reconciliation"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=20, choices=Kind)
    state = models.CharField(max_length=12, choices=State, default=State.PENDING)
    end_user = models.ForeignKey(EndUser, on_delete=models.PROTECT, related_name="operations")
    session = models.ForeignKey(
        ToolRouterSession,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="operations",
        help_text="The session acted on (the old one for a refresh).",
    )
    toolkits = models.JSONField(default=list, blank=True)
    remote_session_id = models.CharField(max_length=128, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # What `reconcile_sessions` did with a stuck intent (or why a human must), and when it closed.
    resolution = models.CharField(max_length=500, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "created_at"], name="operation_state_idx")]
        constraints = [
            # The per-end-user lock's backstop: at most one call to Composio in flight per user.
            models.UniqueConstraint(
                fields=["end_user"],
                condition=Q(state="pending"),
                name="one_pending_operation_per_end_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.end_user_id} ({self.state})"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs: object) -> int:
        raise AuditLogIsAppendOnly("Audit events cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("Audit events cannot be deleted.")


class AuditLogIsAppendOnly(Exception):
    pass


# An audit event's foreign keys: unconstrained, next to a text snapshot (see AuditEvent).
_SNAPSHOT_REFERENCE: dict[str, Any] = {
    "null": True,
    "blank": True,
    "on_delete": models.DO_NOTHING,
    "db_constraint": False,
    "related_name": "+",
}


class AuditEvent(models.Model):
    """Who did what, when, from where, to whom, and how it ended. Append-only: write events only
    through `sessions_app.trail.record`. References are text snapshots (usernames, external ids,
    session ids) plus unconstrained foreign keys: deleting a user or a session never touches it."""

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"
        UNKNOWN = "unknown", "Unknown (Composio may have acted)"
        REFUSED = "refused", "Refused (permission)"
        REJECTED = "rejected", "Rejected input"

    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, **_SNAPSHOT_REFERENCE)
    actor_username = models.CharField(max_length=150, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64)
    outcome = models.CharField(max_length=12, choices=Outcome)
    end_user = models.ForeignKey(EndUser, **_SNAPSHOT_REFERENCE)
    end_user_external_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH, blank=True)
    session = models.ForeignKey(ToolRouterSession, **_SNAPSHOT_REFERENCE)
    session_ref = models.CharField(max_length=128, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    details = models.JSONField(default=dict, blank=True)
    # Toolkit slugs the event is about, space-delimited (" github slack "), for the log's filter.
    toolkit_slugs = models.CharField(max_length=2000, blank=True, default="")
    # The hash chain, written by `trail.record` under a lock: gapless position, previous hash and
    # HMAC-SHA-256 of prev_hash + the canonical event under key `key_id`; the key stays in the env.
    sequence = models.PositiveBigIntegerField(unique=True)
    prev_hash = models.CharField(max_length=64)
    row_hash = models.CharField(max_length=64)
    key_id = models.CharField(max_length=40)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-sequence"]
        indexes = [
            models.Index(fields=["action", "-sequence"], name="audit_action_seq_idx"),
            models.Index(fields=["outcome", "-sequence"], name="audit_outcome_seq_idx"),
            models.Index(fields=["actor_username", "-sequence"], name="audit_actor_seq_idx"),
            models.Index(
                fields=["end_user_external_id", "-sequence"], name="audit_enduser_seq_idx"
            ),
            models.Index(fields=["actor", "-sequence"], name="audit_actor_id_seq_idx"),
        ]
        permissions = [("view_access_report", "Can view toolkit access reports")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.outcome}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Audit events cannot be changed once written.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("Audit events cannot be deleted.")


class BulkJob(models.Model):
    """Create or refresh the sessions of many end users in the background, one item per user, in
    `django-tasks` workers (`sessions_app.bulk.runner`; `sessions_app.bulk` does the work)."""

    class Kind(models.TextChoices):
        CREATE = "create", "Create sessions"
        REFRESH = "refresh", "Refresh sessions"
        # Refresh (same toolkits) only the users whose active session Composio no longer knows.
        RECREATE = "recreate", "Re-create missing sessions"

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        CANCELLING = "cancelling", "Cancelling"
        FINISHED = "finished", "Finished"
        CANCELLED = "cancelled", "Cancelled"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=16, choices=Kind)
    # None (refresh only): each user keeps the toolkits of their current session.
    toolkits = models.JSONField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State, default=State.RUNNING)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by_username = models.CharField(max_length=150, blank=True)
    total = models.PositiveIntegerField(default=0)
    # Items per state, written when the job ends (live counts come from the items).
    counts = models.JSONField(default=dict, blank=True)
    concurrency = models.PositiveSmallIntegerField(default=1)
    rate_per_minute = models.PositiveIntegerField(default=0)
    # A 429's Retry-After pauses the whole job: no runner sends anything before this.
    paused_until = models.DateTimeField(null=True, blank=True)
    # The live runner of each slot ({"0": token, ...}); a runner whose token is stale stops.
    runners = models.JSONField(default=dict, blank=True)
    cancelled_by_username = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "-created_at"], name="bulkjob_state_created_idx")]

    def __str__(self) -> str:
        users = ngettext("%(n)d end user", "%(n)d end users", self.total) % {"n": self.total}
        return f"{self.get_kind_display()} for {users} ({self.state})"

    @property
    def ended(self) -> bool:
        return self.state in (self.State.FINISHED, self.State.CANCELLED)


class BulkJobItem(models.Model):
    """One end user of a bulk job: its state, attempts, last error and resulting session."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Unknown outcome"
        SKIPPED = "skipped", "Skipped"

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="items")
    end_user = models.ForeignKey(EndUser, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=12, choices=State, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    session = models.ForeignKey(
        ToolRouterSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Backoff: not claimed again before this.
    not_before = models.DateTimeField(null=True, blank=True)
    # The runner working on it and until when; an expired lease means that runner died.
    runner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "end_user"], name="bulkjobitem_one_per_user"),
        ]
        indexes = [models.Index(fields=["job", "state", "id"], name="bulkjobitem_job_state_idx")]

    def __str__(self) -> str:
        return f"{self.end_user_id} ({self.state})"
