"""The toolkit catalog: syncing Composio's catalog into the console, and cleaning a toolkit
choice against the catalog and the allow-list."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sessions_app.composio import seam as composio_seam
from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, Toolkit
from sessions_app.tool_router.toolkit_catalog import toolkit_catalog_sync, toolkit_choices_clean
from tests.factories import ALLOWED, SHIPPED_CATALOG

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


# --- toolkit_choices_clean ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "fragment"),
    [
        ([], "at least one toolkit"),
        (None, "list of slugs"),
        ("github", "list of slugs"),
        (["GitHub"], "lower-case"),
        ([" github"], "lower-case"),
        (["github", "github"], "chosen more than once: github"),
        (["nosuchkit"], "Not in Composio's toolkit catalog: 'nosuchkit'"),
        (["jira"], "Not on the allow-list: jira"),
        ([""], "non-empty text"),
        ([3], "non-empty text"),
    ],
)
def test_toolkit_choices_clean_rejects_bad_choices_with_a_clear_message(
    catalog: Emulator, choice: object, fragment: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        toolkit_choices_clean(choice)  # type: ignore[arg-type]
    assert fragment in " ".join(caught.value.messages)


def test_toolkit_choices_clean_refuses_toolkits_no_longer_in_the_catalog(catalog: Emulator) -> None:
    Toolkit.objects.filter(slug="github").update(in_catalog=False)
    with pytest.raises(ValidationError, match="No longer in Composio's toolkit catalog"):
        toolkit_choices_clean(["github"])


def test_toolkit_choices_clean_enforces_the_maximum(catalog: Emulator, settings) -> None:
    settings.TOOL_ROUTER_MAX_TOOLKITS = 2
    with pytest.raises(ValidationError, match="at most 2"):
        toolkit_choices_clean(["github", "gmail", "slack"])


def test_toolkit_choices_clean_keeps_the_chosen_order(catalog: Emulator) -> None:
    assert toolkit_choices_clean(["slack", "github"]) == ["slack", "github"]


_anything = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.lists(st.one_of(st.text(max_size=30), st.integers(), st.none()), max_size=8),
)


@given(choice=_anything)
@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_toolkit_choices_clean_never_crashes_and_only_passes_allowed_slugs(
    catalog: Emulator, choice: object
) -> None:
    try:
        cleaned = toolkit_choices_clean(choice)  # type: ignore[arg-type]
    except ValidationError as error:
        assert error.messages
    else:
        assert cleaned and set(cleaned) <= set(ALLOWED)
