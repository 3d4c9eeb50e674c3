"""Composio's toolkit catalog as the console mirrors it, and the choice of a session's
toolkits: never a guessed slug, only what the catalog lists and the company allows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from sessions_app import trail
from sessions_app.composio import seam as composio_seam
from sessions_app.models import AuditEvent, Toolkit
from sessions_app.tool_router import rate_limit, rejections


@dataclass
class CatalogSyncResult:
    total: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.vanished or self.returned)

    def summary(self) -> str:
        return (
            f"{self.total} toolkits in Composio's catalog: {len(self.added)} new, "
            f"{len(self.updated)} updated, {len(self.returned)} back in the catalog, "
            f"{len(self.vanished)} no longer listed."
        )


_CATALOG_FIELDS = ("name", "auth_schemes", "no_auth", "categories", "description")


def toolkit_catalog_sync(
    *,
    actor: AbstractBaseUser | None = None,
    request: HttpRequest | None = None,
    progress: Callable[[int, int], None] | None = None,
    page_size: int = 1000,
) -> CatalogSyncResult:
    """Mirror Composio's whole toolkit catalog into `Toolkit` rows.

    Reads every page first and writes nothing unless the catalog was read completely, so a fault
    half-way never marks the unread toolkits as vanished. New toolkits start NOT allowed; rows are
    never deleted (vanished ones get `in_catalog=False`). Audited, with what changed.
    """
    remote: dict[str, composio_seam.CatalogToolkit] = {}
    pages = composio_seam.iter_catalog_pages(page_size=page_size)
    try:
        # One request per page, paid for before it is asked for (from the admin: the shared
        # budget; the last, empty turn of the loop pays for a request never sent).
        while (turn := _next_page(pages, request)) is not None:
            page, total = turn
            for toolkit in page:
                remote[toolkit.slug.lower()] = toolkit
            if progress is not None:
                progress(len(remote), max(total, len(remote)))
    except composio_seam.ComposioError as exc:
        trail.record(
            action="catalog.sync",
            outcome=AuditEvent.Outcome.FAILURE,
            actor=actor,
            request=request,
            reason=exc.message,
        )
        raise
    return _store_catalog(remote, actor=actor, request=request)


def _next_page(
    pages: Iterator[tuple[list[composio_seam.CatalogToolkit], int]],
    request: HttpRequest | None,
) -> tuple[list[composio_seam.CatalogToolkit], int] | None:
    rate_limit.draw(request)
    return next(pages, None)


def _store_catalog(
    remote: dict[str, composio_seam.CatalogToolkit],
    *,
    actor: AbstractBaseUser | None,
    request: HttpRequest | None,
) -> CatalogSyncResult:
    """Write the catalog read in full: new rows, updates, vanished and returned toolkits."""
    result = CatalogSyncResult(total=len(remote))
    now = timezone.now()
    with transaction.atomic():
        existing = {t.slug: t for t in Toolkit.objects.select_for_update()}
        to_create, to_update = _catalog_changes(remote, existing, result, now)
        Toolkit.objects.bulk_create(to_create, batch_size=500)
        Toolkit.objects.bulk_update(
            to_update, [*_CATALOG_FIELDS, "in_catalog", "last_synced_at"], batch_size=500
        )
        trail.record(
            action="catalog.sync",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            request=request,
            reason=result.summary(),
            details={
                "total": result.total,
                "added": sorted(result.added)[:200],
                "updated": sorted(result.updated)[:200],
                "vanished": sorted(result.vanished)[:200],
                "returned": sorted(result.returned)[:200],
            },
        )
    return result


def _catalog_changes(
    remote: dict[str, composio_seam.CatalogToolkit],
    existing: dict[str, Toolkit],
    result: CatalogSyncResult,
    now: datetime,
) -> tuple[list[Toolkit], list[Toolkit]]:
    """The rows to create and to update; notes each change in `result`."""
    to_create: list[Toolkit] = []
    to_update: list[Toolkit] = []
    for slug, item in remote.items():
        values = {
            "name": item.name[:200],
            "auth_schemes": list(item.auth_schemes),
            "no_auth": item.no_auth,
            "categories": list(item.categories),
            "description": item.description,
        }
        row = existing.get(slug)
        if row is None:
            to_create.append(Toolkit(slug=slug, last_synced_at=now, **values))
            result.added.append(slug)
            continue
        differs = any(getattr(row, k) != v for k, v in values.items())
        if not row.in_catalog:
            result.returned.append(slug)
        elif differs:
            result.updated.append(slug)
        for key, value in values.items():
            setattr(row, key, value)
        row.in_catalog = True
        row.last_synced_at = now
        to_update.append(row)
    for slug, row in existing.items():
        if slug not in remote and row.in_catalog:
            row.in_catalog = False
            to_update.append(row)
            result.vanished.append(slug)
    return to_create, to_update


def toolkit_choices_clean(toolkits: Sequence[object]) -> list[str]:
    """The toolkit slugs a session may be given, in the order chosen, or a ValidationError.

    Every slug must be a lower-case string naming a toolkit that is in Composio's catalog (as last
    synced) and on the company allow-list; at least one, no duplicates, at most
    TOOL_ROUTER_MAX_TOOLKITS. An empty list would deny every toolkit at Composio and a missing
    one would grant them all, so neither ever passes. Never raises anything else.
    """
    if toolkits is None or isinstance(toolkits, str | bytes) or not isinstance(toolkits, Iterable):
        raise ValidationError("Choose the toolkits as a list of slugs.", code="not_a_list")
    items = list(toolkits)
    if not items:
        raise ValidationError(
            "Choose at least one toolkit: an empty list would deny every toolkit at Composio.",
            code="empty",
        )
    errors: list[ValidationError] = []
    slugs: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            errors.append(ValidationError("Toolkit slugs must be non-empty text.", code="blank"))
            continue
        slugs.append(item)
    if errors:
        raise ValidationError(errors[:1])

    not_lower = [s for s in slugs if s != s.lower() or s != s.strip()]
    if not_lower:
        raise ValidationError(
            "Toolkit slugs are lower-case with no spaces: "
            + ", ".join(repr(s[:60]) for s in not_lower[:10])
            + " is not.",
            code="not_lowercase",
        )
    seen: set[str] = set()
    duplicates = sorted({s for s in slugs if s in seen or seen.add(s)})
    if duplicates:
        raise ValidationError(
            "Each toolkit may be chosen once; chosen more than once: "
            + ", ".join(duplicates)
            + ".",
            code="duplicate",
        )
    limit = settings.TOOL_ROUTER_MAX_TOOLKITS
    if len(slugs) > limit:
        raise ValidationError(
            f"{len(slugs)} toolkits were chosen; a session may have at most {limit}.",
            code="too_many",
        )
    return _in_catalog_and_allowed(slugs)


# A reading of the whole toolkit table that `toolkit_choices_clean` and `toolkit_ids` answer from
# instead of the database, while `pinned` holds it (per thread: a context variable).
_pinned: ContextVar[dict[str, Toolkit] | None] = ContextVar("toolkits_pinned", default=None)


def read_toolkits() -> dict[str, Toolkit]:
    """Every toolkit row by slug (its id, allow-list and catalog flags), in one query: what
    `pinned` holds."""
    return {t.slug: t for t in Toolkit.objects.only("id", "slug", "is_allowed", "in_catalog")}


@contextmanager
def pinned(toolkits: dict[str, Toolkit]) -> Iterator[None]:
    """Check toolkits and look their ids up in `toolkits` (a `read_toolkits` reading) while the
    block runs, instead of asking the database each time. A bulk runner pins one reading per
    batch of items: an allow-list change applies from its next batch."""
    token = _pinned.set(toolkits)
    try:
        yield
    finally:
        _pinned.reset(token)


def _toolkits(slugs: Iterable[str]) -> dict[str, Toolkit]:
    """The toolkit rows of these slugs, by slug (from the pinned reading, if one is held)."""
    held = _pinned.get()
    if held is not None:
        return {s: held[s] for s in slugs if s in held}
    # A NUL byte cannot be sent to PostgreSQL; such a slug is simply unknown.
    wanted = [s[:100] for s in slugs if "\x00" not in s]
    return {
        t.slug: t
        for t in Toolkit.objects.filter(slug__in=wanted).only("slug", "is_allowed", "in_catalog")
    }


def toolkit_ids(slugs: Sequence[str]) -> dict[str, int]:
    """The ids of the toolkits these slugs name (slugs of no toolkit left out)."""
    held = _pinned.get()
    if held is not None:
        return {s: held[s].pk for s in slugs if s in held}
    return dict(Toolkit.objects.filter(slug__in=list(slugs)).values_list("slug", "pk"))


def _in_catalog_and_allowed(slugs: list[str]) -> list[str]:
    """`slugs` if every one is in the synced catalog and on the allow-list; else a
    ValidationError naming the first kind of problem."""
    known = _toolkits(slugs)
    unknown = [s for s in slugs if s not in known]
    if unknown:
        raise ValidationError(
            "Not in Composio's toolkit catalog: "
            + ", ".join(repr(s[:60]) for s in unknown[:10])
            + (". Sync the catalog if it is new." if len(unknown) <= 10 else ", ..."),
            code="unknown",
        )
    vanished = [s for s in slugs if not known[s].in_catalog]
    if vanished:
        raise ValidationError(
            "No longer in Composio's toolkit catalog: " + ", ".join(vanished) + ".",
            code="vanished",
        )
    disallowed = [s for s in slugs if not known[s].is_allowed]
    if disallowed:
        raise ValidationError(
            "Not on the allow-list: " + ", ".join(disallowed) + ". Ask a session admin to allow "
            "it on the Toolkits page first.",
            code="not_allowed",
        )
    return slugs


def toolkit_choices_checked(
    toolkits: Sequence[object],
    *,
    refused: str,
    operation: str,
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None = None,
    end_users: Sequence[str] = (),
) -> list[str]:
    """`toolkit_choices_clean`, for a caller that checks before anything else happens (a
    command creating the end user first, a bulk job): a bad choice is audited once as
    `input.rejected`, its reason starting with `refused` ("No bulk job was started"), and the
    ValidationError is raised again."""
    try:
        return toolkit_choices_clean(toolkits)
    except ValidationError as error:
        rejections.toolkit_choice_rejected(
            operation=operation,
            reason=f"{refused}: {validation_message(error)}",
            toolkits=[str(t) for t in list(toolkits)[:50]],
            crafted=False,
            end_users=end_users,
            actor=actor,
            request=request,
        )
        raise


def validation_message(error: ValidationError) -> str:
    """One sentence from a ValidationError, fit to show a person."""
    return " ".join(str(m) for m in error.messages)
