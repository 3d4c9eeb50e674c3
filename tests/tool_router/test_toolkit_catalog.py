from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sessions_app.composio import seam as composio_seam
from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, Toolkit
from sessions_app.tool_router.toolkit_catalog import toolkit_catalog_sync
from tests.factories import SHIPPED_CATALOG

pytestmark = pytest.mark.django_db


def test_first_sync_creates_every_toolkit_not_allowed(emulator: Emulator) -> None:
    result = toolkit_catalog_sync()

    assert result.total == len(result.added) == 198
    assert Toolkit.objects.count() == 198
    assert not Toolkit.objects.filter(is_allowed=True).exists()
    github = Toolkit.objects.get(slug="github")
    assert github.in_catalog and github.name and github.last_synced_at is not None
    event = AuditEvent.objects.get(action="catalog.sync")
    assert event.outcome == "success" and event.details["total"] == 198


def test_vanished_toolkits_are_kept_but_flagged_and_can_return(emulator: Emulator) -> None:
    toolkit_catalog_sync()
    Toolkit.objects.filter(slug="github").update(is_allowed=True)
    emulator.set_catalog([t for t in SHIPPED_CATALOG if t["slug"] != "github"])

    result = toolkit_catalog_sync()

    assert result.vanished == ["github"] and not result.added
    github = Toolkit.objects.get(slug="github")
    assert github.in_catalog is False and github.is_allowed is True
    assert Toolkit.objects.count() == 198

    emulator.set_catalog(SHIPPED_CATALOG)
    result = toolkit_catalog_sync()
    assert result.returned == ["github"]
    assert Toolkit.objects.get(slug="github").in_catalog is True


def test_changed_fields_are_updated_and_an_unchanged_sync_changes_nothing(
    emulator: Emulator,
) -> None:
    toolkit_catalog_sync()
    assert not toolkit_catalog_sync().changed

    renamed = [
        dict(t, name="GitHub Enterprise") if t["slug"] == "github" else t for t in SHIPPED_CATALOG
    ]
    emulator.set_catalog(renamed)
    result = toolkit_catalog_sync()
    assert result.updated == ["github"]
    assert Toolkit.objects.get(slug="github").name == "GitHub Enterprise"


def test_a_fault_half_way_through_the_catalog_writes_nothing(emulator: Emulator) -> None:
    toolkit_catalog_sync()
    emulator.set_catalog(SHIPPED_CATALOG[:100])
    pages_read = []

    def fail_after_first_page(done: int, total: int) -> None:
        pages_read.append(done)
        emulator.faults.enqueue(500, endpoint="toolkits.list", times=3)

    with pytest.raises(composio_seam.ComposioError):
        toolkit_catalog_sync(page_size=50, progress=fail_after_first_page)

    assert pages_read == [50]
    assert Toolkit.objects.filter(in_catalog=False).count() == 0
    assert AuditEvent.objects.filter(action="catalog.sync", outcome="failure").count() == 1


def test_the_command_prints_what_changed(emulator: Emulator) -> None:
    out = StringIO()
    call_command("sync_toolkits", stdout=out, stderr=StringIO())
    assert "198 toolkits in Composio's catalog: 198 new" in out.getvalue()

    emulator.set_catalog(SHIPPED_CATALOG[1:])
    out = StringIO()
    call_command("sync_toolkits", stdout=out, stderr=StringIO())
    assert f"No longer in Composio's catalog: {SHIPPED_CATALOG[0]['slug']}" in out.getvalue()


def test_the_command_fails_clearly_when_composio_is_down(emulator: Emulator) -> None:
    emulator.faults.enqueue(500, endpoint="toolkits.list")
    with pytest.raises(CommandError, match="nothing was changed.*HTTP 500"):
        call_command("sync_toolkits", stdout=StringIO(), stderr=StringIO())
    assert Toolkit.objects.count() == 0
