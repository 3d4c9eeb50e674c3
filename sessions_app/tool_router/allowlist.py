"""The toolkit allow-list: which toolkits of Composio's catalog new sessions may be given.

Allowing or disallowing a toolkit changes no session: a disallowed toolkit stays granted by the
active sessions that have it until they are refreshed, and the result says which ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest

from sessions_app import access, trail
from sessions_app.models import AuditEvent, Toolkit, ToolRouterSession

ALLOWLIST_PERMISSION = "sessions_app.manage_toolkit_allowlist"


@dataclass(frozen=True)
class AllowlistResult:
    """What `toolkit_allowlist_set` did.

    `changed`: the slugs whose state it changed (one audit event each); `not_in_catalog`: the
    slugs it refused to allow because Composio's catalog no longer lists them; `still_used`:
    (slug, active sessions) of each toolkit it disallowed that active sessions still grant.
    """

    allowed: bool
    changed: tuple[str, ...] = ()
    not_in_catalog: tuple[str, ...] = ()
    still_used: tuple[tuple[str, int], ...] = ()


def toolkit_allowlist_set(
    *,
    toolkits: Iterable[Toolkit],
    allowed: bool,
    actor: access.Actor,
    request: HttpRequest | None = None,
) -> AllowlistResult:
    """Allow (or disallow) each of `toolkits` for new sessions, in slug order.

    Raises `access.Refused` (audited once, nothing saved) unless `actor` may manage the
    allow-list. A toolkit already in the wanted state is left alone; one the catalog no longer
    lists is never allowed. Each change is saved together with its `toolkit.allow` or
    `toolkit.disallow` audit event, or not at all.
    """
    verb = "allow" if allowed else "disallow"
    access.require(
        actor,
        ALLOWLIST_PERMISSION,
        operation=f"toolkit.{verb}",
        reason=f"Managing the toolkit allow-list needs {ALLOWLIST_PERMISSION}.",
        request=request,
    )
    pks = [toolkit.pk for toolkit in toolkits]
    in_use = _active_session_counts(pks)
    changed: list[str] = []
    not_in_catalog: list[str] = []
    still_used: list[tuple[str, int]] = []
    for pk in Toolkit.objects.filter(pk__in=pks).order_by("slug").values_list("pk", flat=True):
        with transaction.atomic():
            # Locked so two admins toggling the same toolkit audit one change, not two.
            toolkit = Toolkit.objects.select_for_update().filter(pk=pk).first()
            if toolkit is None or toolkit.is_allowed == allowed:
                continue
            if allowed and not toolkit.in_catalog:
                not_in_catalog.append(toolkit.slug)
                continue
            toolkit.is_allowed = allowed
            toolkit.save(update_fields=["is_allowed"])
            count = in_use.get(pk, 0)
            trail.record(
                action=f"toolkit.{verb}",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=actor,
                request=request,
                reason=f"{verb.capitalize()}ed {toolkit.slug}.",
                details={"toolkit": toolkit.slug, "active_sessions": count},
            )
        changed.append(toolkit.slug)
        if not allowed and count:
            still_used.append((toolkit.slug, count))
    return AllowlistResult(allowed, tuple(changed), tuple(not_in_catalog), tuple(still_used))


def _active_session_counts(pks: list[int]) -> dict[int, int]:
    """How many active sessions grant each toolkit (toolkits no session grants are left out)."""
    rows = (
        Toolkit.objects.filter(pk__in=pks)
        .annotate(
            active=Count(
                "sessions",
                filter=Q(sessions__status=ToolRouterSession.Status.ACTIVE),
                distinct=True,
            )
        )
        .filter(active__gt=0)
        .values_list("pk", "active")
    )
    return dict(rows)
