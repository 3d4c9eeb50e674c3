"""The audit trail is append-only (model and database triggers) and hash-chained."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction
from django.db.backends.utils import CursorWrapper

from sessions_app import trail
from sessions_app.models import AuditEvent, AuditLogIsAppendOnly
from tests.factories import record_events
from tests.helpers import AUDIT_TABLE, tampering, verify_audit


@contextmanager
def refused_by_the_trigger() -> Iterator[CursorWrapper]:
    """A cursor whose statement the database's append-only trigger must refuse (rolled back)."""
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        yield cursor


@pytest.mark.django_db
def test_orm_update_and_delete_of_an_event_raise() -> None:
    (event,) = record_events(1)
    event.reason = "edited"
    with pytest.raises(AuditLogIsAppendOnly):
        event.save()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(reason="edited")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).reason == "event 1"


@pytest.mark.django_db
def test_raw_sql_update_is_refused_by_the_database_trigger() -> None:
    (event,) = record_events(1)
    with refused_by_the_trigger() as cursor:
        cursor.execute(f"UPDATE {AUDIT_TABLE} SET reason = 'edited' WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).reason == "event 1"


@pytest.mark.django_db
def test_raw_sql_delete_is_refused_by_the_database_trigger() -> None:
    record_events(2)
    with refused_by_the_trigger() as cursor:
        cursor.execute(f"DELETE FROM {AUDIT_TABLE}")
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db
def test_raw_sql_truncate_is_refused_outside_a_test_database() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE; its DELETE trigger is tested above")
    record_events(1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT prosrc FROM pg_proc WHERE proname = %s", [f"{AUDIT_TABLE}_refuse_change"]
        )
        (source,) = cursor.fetchone()
    # Django's test databases are named test_*, where flush must TRUNCATE between tests.
    assert "TG_OP = 'TRUNCATE' AND current_database() LIKE 'test\\_%'" in source


@pytest.mark.django_db
def test_each_event_links_to_the_one_before_it() -> None:
    first, second, third = record_events(3)
    assert [first.sequence, second.sequence, third.sequence] == [1, 2, 3]
    assert first.prev_hash == trail.GENESIS_HASH
    assert second.prev_hash == first.row_hash and third.prev_hash == second.row_hash
    stored = AuditEvent.objects.get(pk=second.pk)
    assert trail.chain_hash(stored.prev_hash, stored) == stored.row_hash


@pytest.mark.django_db
def test_verify_audit_passes_on_an_intact_log() -> None:
    events = record_events(5)
    assert verify_audit() == f"Audit chain intact: 5 events, head #5:{events[-1].row_hash}\n"


@pytest.mark.django_db
def test_verify_audit_passes_on_an_empty_log() -> None:
    assert verify_audit() == "Audit chain intact: 0 events\n"


@pytest.mark.django_db
def test_verify_audit_names_the_first_edited_event() -> None:
    events = record_events(6)
    with tampering() as cursor:
        cursor.execute(
            f"UPDATE {AUDIT_TABLE} SET reason = 'nothing to see' WHERE id = %s", [events[2].pk]
        )
        cursor.execute(
            f"UPDATE {AUDIT_TABLE} SET reason = 'me neither' WHERE id = %s", [events[4].pk]
        )
    with pytest.raises(CommandError, match=r"ALTERED: event #3 \(id \d+, catalog.sync") as exc:
        verify_audit()
    assert "#5" not in str(exc.value)


@pytest.mark.django_db
def test_verify_audit_catches_an_edit_whose_hash_was_recomputed() -> None:
    events = record_events(4)
    forged = AuditEvent.objects.get(pk=events[1].pk)
    forged.reason = "forged"
    forged_hash = trail.chain_hash(forged.prev_hash, forged)
    with tampering() as cursor:
        cursor.execute(
            f"UPDATE {AUDIT_TABLE} SET reason = 'forged', row_hash = %s WHERE id = %s",
            [forged_hash, forged.pk],
        )
    with pytest.raises(CommandError, match=r"ALTERED: event #2 .* no longer matches"):
        verify_audit()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("count", "deleted", "message"),
    [
        (5, 1, r"REMOVED: #2 missing between event #1 .* event #3"),
        (3, 0, r"REMOVED: #1 missing between the start of the log"),
    ],
    ids=["a middle event", "the first event"],
)
def test_verify_audit_names_a_deleted_event(count: int, deleted: int, message: str) -> None:
    events = record_events(count)
    with tampering() as cursor:
        cursor.execute(f"DELETE FROM {AUDIT_TABLE} WHERE id = %s", [events[deleted].pk])
    with pytest.raises(CommandError, match=message):
        verify_audit()


@pytest.mark.django_db
def test_verify_audit_names_reordered_events() -> None:
    events = record_events(5)
    third, fourth = events[2], events[3]
    with tampering() as cursor:
        # Swap the positions of events 3 and 4 (via a free number: sequence is unique).
        cursor.execute(f"UPDATE {AUDIT_TABLE} SET sequence = 1000 WHERE id = %s", [third.pk])
        cursor.execute(f"UPDATE {AUDIT_TABLE} SET sequence = 3 WHERE id = %s", [fourth.pk])
        cursor.execute(f"UPDATE {AUDIT_TABLE} SET sequence = 4 WHERE id = %s", [third.pk])
    with pytest.raises(CommandError, match=rf"REORDERED: event #3 \(id {fourth.pk},"):
        verify_audit()


@pytest.mark.django_db
def test_verify_audit_with_a_recorded_head_catches_a_cut_off_tail() -> None:
    events = record_events(4)
    head = f"4:{events[-1].row_hash}"
    call_command("verify_audit", head=head, stdout=None)
    with tampering() as cursor:
        cursor.execute(f"DELETE FROM {AUDIT_TABLE} WHERE id = %s", [events[-1].pk])
    verify_audit()  # the chain itself is still consistent...
    with pytest.raises(CommandError, match="recorded head #4 is missing or changed"):
        call_command("verify_audit", head=head)


@pytest.mark.django_db
def test_the_hash_covers_the_details_and_the_time() -> None:
    event = trail.record(action="toolkit.allow", outcome="success", details={"toolkit": "github"})
    twin = AuditEvent.objects.get(pk=event.pk)
    twin.details = {"toolkit": "gmail"}
    assert trail.chain_hash(twin.prev_hash, twin) != event.row_hash
    twin = AuditEvent.objects.get(pk=event.pk)
    twin.created_at = twin.created_at.replace(microsecond=(twin.created_at.microsecond + 1) % 10**6)
    assert trail.chain_hash(twin.prev_hash, twin) != event.row_hash


@pytest.mark.django_db
def test_an_event_rolled_back_with_its_transaction_leaves_no_gap() -> None:
    record_events(2)
    with pytest.raises(RuntimeError), transaction.atomic():
        trail.record(action="catalog.sync", outcome="success")
        raise RuntimeError("the caller's work failed")
    trail.record(action="catalog.sync", outcome="success")
    assert list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True)) == [
        1,
        2,
        3,
    ]
    verify_audit()


@pytest.mark.skipif(
    "postgresql" not in settings.DATABASES["default"]["ENGINE"],
    reason="needs PostgreSQL: SQLite admits one writer at a time, so there is no race to test",
)
# serialized_rollback: restore the roles and content types after the flush, like the browser tests.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_chain_stays_valid_with_20_threads_writing_at_once() -> None:
    start = threading.Barrier(20)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(10):
                trail.record(action="catalog.sync", outcome="success", reason=f"t{n} e{i}")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert AuditEvent.objects.count() == 200
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, 201))
    assert verify_audit().startswith("Audit chain intact: 200 events")


@pytest.mark.django_db
def test_only_a_test_database_flush_may_empty_the_audit_table() -> None:
    from sessions_app.management.commands.flush import _is_test_database

    assert _is_test_database("default")  # the test runner's database
    record_events(2)
    with trail.erasable_for_test_flush(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {AUDIT_TABLE}" if connection.vendor == "sqlite" else "SELECT 1"
        )
    if connection.vendor == "sqlite":
        assert AuditEvent.objects.count() == 0
    record_events(1)
    with refused_by_the_trigger() as cursor:
        cursor.execute(f"DELETE FROM {AUDIT_TABLE}")
