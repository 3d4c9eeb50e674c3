"""What the admin's actions share: refusing a hidden action that was posted anyway, the
permission checks `@admin.action(permissions=...)` asks for, and reporting session results.

Actions hold no rule of their own: the services they call check permissions again and audit
every attempt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import ngettext

from sessions_app import access, navigation
from sessions_app.tool_router import locators, sessions

# The end-user admin action of each session operation.
_SESSION_ACTION_OPERATION = {
    "create_sessions": "create",
    "refresh_sessions": "refresh",
    "change_session_toolkits": "change_toolkits",
    "delete_sessions": "delete",
    # A refresh that keeps the toolkits, for the sessions Composio no longer knows.
    "recreate_missing_sessions": "refresh",
}
# The permission each session action needs: the one its session service checks.
SESSION_ACTIONS = {
    action: access.SESSION_PERMISSION[operation]
    for action, operation in _SESSION_ACTION_OPERATION.items()
}

_OUTCOME_LEVEL = {
    sessions.Outcome.SUCCEEDED: messages.SUCCESS,
    sessions.Outcome.SKIPPED: messages.WARNING,
    sessions.Outcome.IN_PROGRESS: messages.WARNING,
    sessions.Outcome.FAILED: messages.ERROR,
    sessions.Outcome.UNKNOWN: messages.ERROR,
    sessions.Outcome.REFUSED: messages.ERROR,
}
_OUTCOME_WORDS = {
    sessions.Outcome.SUCCEEDED: "succeeded",
    sessions.Outcome.SKIPPED: "skipped",
    sessions.Outcome.IN_PROGRESS: "already in progress",
    sessions.Outcome.FAILED: "failed",
    sessions.Outcome.UNKNOWN: "outcome unknown",
    sessions.Outcome.REFUSED: "refused",
}


def sync_limit() -> int:
    """How many end users one action handles while the user waits."""
    return settings.TOOL_ROUTER_SYNC_LIMIT


def refuse_posted_action(
    request: HttpRequest, model_admin: admin.ModelAdmin, guarded: dict[str, str]
) -> HttpResponse | None:
    """Refuse (audited) a posted action the user may not run (it is hidden for them): the
    console's refusal page, naming the action and the role that would allow it."""
    if request.method != "POST":
        return None
    action = request.POST.get("action", "")
    if action not in guarded or action in model_admin.get_actions(request):
        return None
    described = getattr(getattr(model_admin, action, None), "short_description", action)
    refused = access.refuse(
        operation=f"admin.{model_admin.model._meta.model_name}.{action}",
        reason=f"Admin action {action} needs {guarded[action]}.",
        message=f"You may not run the admin action “{str(described).rstrip('.…')}”.",
        request=request,
        missing=[guarded[action]],
    )
    return access.refusal_response(request, refused)


class GuardedActionsMixin(admin.ModelAdmin):
    """A changelist that refuses (through `refuse_posted_action`) a guarded action posted by
    someone it is hidden from, and adds `changelist_context` to the page."""

    guarded_actions: dict[str, str] = {}

    def changelist_context(self, request: HttpRequest) -> dict[str, Any]:
        """What the changelist template needs beyond Django's own context."""
        return {}

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        refused = refuse_posted_action(request, self, self.guarded_actions)
        if refused is not None:
            return refused
        extra_context = {**(extra_context or {}), **self.changelist_context(request)}
        return super().changelist_view(request, extra_context)


class SessionPermissionsMixin:
    """`has_<codename>_permission` for each session operation's permission, as
    `@admin.action(permissions=[...])` looks them up."""

    @staticmethod
    def _may(request: HttpRequest, operation: str) -> bool:
        return request.user.has_perm(access.SESSION_PERMISSION[operation])

    def has_create_session_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "create")

    def has_refresh_session_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "refresh")

    def has_change_session_toolkits_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "change_toolkits")

    def has_delete_session_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "delete")


# What a session operation changed, as the line that lists it says it (singular, plural).
_CHANGED_WORDS = {
    "create": ("New session", "New sessions"),
    "refresh": ("New session", "New sessions"),
    "change_toolkits": ("Toolkits changed in place", "Toolkits changed in place"),
    "delete": ("Deleted session", "Deleted sessions"),
}


def session_link(request: HttpRequest, end_user: Any, session_id: str) -> SafeString:
    """`trs_cpnfo4nj (usr_1)`: the session's short id as the user may see it, linked to the end
    user's support card when they may open it."""
    shown = locators.locator(session_id, request.user, short=True)
    url = navigation.card_url(request.user, end_user)
    if not url:
        return format_html("{} ({})", shown, end_user.external_id)
    return format_html('<a href="{}" class="mono">{}</a> ({})', url, shown, end_user.external_id)


def changed_line(
    request: HttpRequest, answers: Sequence[sessions.SessionResult], operation: str
) -> SafeString | None:
    """The line that lists what the action changed: each session it made (or changed, or
    deleted) as a short id linked to its user's card; None when nothing changed."""
    done = [r for r in answers if r.ok and r.session is not None]
    if not done or operation not in _CHANGED_WORDS:
        return None
    words = ngettext(*_CHANGED_WORDS[operation], len(done))
    links = format_html_join(
        ", ", "{}", ((session_link(request, r.end_user, r.session.session_id),) for r in done)
    )
    return format_html("{}: {}.", words, links)


def report_results(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    answers: Sequence[sessions.SessionResult],
    *,
    operation: str,
) -> None:
    """One summary line with counts per outcome, the line listing what changed (`operation`'s
    sessions, linked to their cards), then each result that needs attention named."""
    counts = Counter(r.outcome for r in answers)
    summary = ", ".join(f"{n} {_OUTCOME_WORDS[o]}" for o, n in counts.items())
    level = messages.SUCCESS if counts.keys() == {sessions.Outcome.SUCCEEDED} else messages.WARNING
    count = len(answers)
    users = ngettext("%(n)d end user", "%(n)d end users", count) % {"n": count}
    model_admin.message_user(request, f"{users}: {summary}.", level)
    changed = changed_line(request, answers, operation)
    if changed is not None:
        model_admin.message_user(request, changed, messages.SUCCESS)
    for result in answers:
        if len(answers) == 1 or not result.ok:
            # A result names its session (and the one it replaced): as the user may see them.
            session = result.session
            named = [session.session_id] if session is not None else []
            if session is not None and session.replaces_id is not None:
                named.append(session.replaces.session_id)
            message = locators.locators_in(result.message, request.user, named)
            model_admin.message_user(request, message, _OUTCOME_LEVEL[result.outcome])


def too_many(model_admin: admin.ModelAdmin, request: HttpRequest, count: int) -> bool:
    """Whether `count` end users exceed what one action handles; if so, say so to the user."""
    limit = sync_limit()
    if count <= limit:
        return False
    model_admin.message_user(
        request,
        f"You selected {count} end users; this action handles at most {limit} at a time "
        "(TOOL_ROUTER_SYNC_LIMIT); only create and refresh run larger selections as background "
        "jobs. Select fewer and repeat.",
        messages.ERROR,
    )
    return True


def hidden_selection(request: HttpRequest, objects: Sequence[Any]) -> dict[str, Any]:
    """The hidden fields an intermediate page re-posts so Django runs the same action again."""
    return {
        "action": request.POST.get("action", ""),
        "select_across": request.POST.get("select_across", "0"),
        "selected_pks": [obj.pk for obj in objects],
    }
