"""The console's operations. Views, admin actions, commands and tasks call these; nothing else
calls the Composio seam."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from . import audit, composio_seam
from .models import AuditEvent, Toolkit

# --- Toolkit catalog ---------------------------------------------------------------------------


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
    try:
        for page, total in composio_seam.iter_catalog_pages(page_size=page_size):
            for toolkit in page:
                remote[toolkit.slug.lower()] = toolkit
            if progress is not None:
                progress(len(remote), max(total, len(remote)))
    except composio_seam.ComposioError as exc:
        audit.record(
            action="catalog.sync",
            outcome=AuditEvent.Outcome.FAILURE,
            actor=actor,
            request=request,
            reason=exc.message,
        )
        raise

    result = CatalogSyncResult(total=len(remote))
    now = timezone.now()
    with transaction.atomic():
        existing = {t.slug: t for t in Toolkit.objects.select_for_update()}
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
        Toolkit.objects.bulk_create(to_create, batch_size=500)
        Toolkit.objects.bulk_update(
            to_update, [*_CATALOG_FIELDS, "in_catalog", "last_synced_at"], batch_size=500
        )
        audit.record(
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
