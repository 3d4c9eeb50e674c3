# The audit hash chain (sequence, prev_hash, row_hash), the log's indexes, and database triggers
# that refuse UPDATE and DELETE on the audit table (SQLite and PostgreSQL).
from django.db import migrations, models

TABLE = "sessions_app_auditevent"

SQLITE_TRIGGERS = [
    # trc_audit_erasable() is registered on every connection by sessions_app.apps; it is true
    # only while `manage.py flush` empties a test database. A connection without it (the sqlite3
    # shell) gets "no such function" and is refused as well.
    f"""CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END""",
    f"""CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON {TABLE}
    WHEN NOT trc_audit_erasable()
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS audit_event_no_update",
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
]

PG_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION {TABLE}_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        -- TRUNCATE is allowed only on Django's test databases (flush between tests).
        IF TG_OP = 'TRUNCATE' AND current_database() LIKE 'test\\_%' THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$""",
    f"""CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_refuse_change()""",
    f"""CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_refuse_change()""",
]
PG_DROP = [
    f"DROP TRIGGER IF EXISTS audit_event_no_update ON {TABLE}",
    f"DROP TRIGGER IF EXISTS audit_event_no_truncate ON {TABLE}",
    f"DROP FUNCTION IF EXISTS {TABLE}_refuse_change()",
]


def _run(schema_editor, statements):
    for sql in statements:
        schema_editor.execute(sql, params=None)


def install_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        _run(schema_editor, SQLITE_TRIGGERS)
    elif vendor == "postgresql":
        _run(schema_editor, PG_TRIGGERS)


def remove_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        _run(schema_editor, SQLITE_DROP)
    elif vendor == "postgresql":
        _run(schema_editor, PG_DROP)


def chain_existing_events(apps, schema_editor):
    # Events written before the chain existed are chained in id order, once, here.
    from sessions_app.audit import GENESIS_HASH, chain_hash

    AuditEvent = apps.get_model("sessions_app", "AuditEvent")
    prev = GENESIS_HASH
    events = AuditEvent._base_manager.order_by("id")
    for number, event in enumerate(events.iterator(chunk_size=2000), start=1):
        event.toolkit_slugs = event.toolkit_slugs or ""
        row_hash = chain_hash(prev, event)
        AuditEvent._base_manager.filter(pk=event.pk).update(
            sequence=number, prev_hash=prev, row_hash=row_hash
        )
        prev = row_hash


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0003_lookup_indexes")]

    operations = [
        migrations.AlterModelOptions(
            name="auditevent",
            options={
                "ordering": ["-sequence"],
                "permissions": [("view_access_report", "Can view toolkit access reports")],
            },
        ),
        migrations.RemoveIndex(model_name="auditevent", name="audit_action_idx"),
        migrations.RemoveIndex(model_name="auditevent", name="audit_actor_idx"),
        migrations.RemoveIndex(model_name="auditevent", name="audit_end_user_idx"),
        migrations.AddField(
            model_name="auditevent",
            name="toolkit_slugs",
            field=models.CharField(blank=True, default="", max_length=2000),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="sequence",
            field=models.PositiveBigIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="row_hash",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(chain_existing_events, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditevent",
            name="sequence",
            field=models.PositiveBigIntegerField(unique=True),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["action", "-sequence"], name="audit_action_seq_idx"),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["outcome", "-sequence"], name="audit_outcome_seq_idx"),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                fields=["actor_username", "-sequence"], name="audit_actor_seq_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                fields=["end_user_external_id", "-sequence"], name="audit_enduser_seq_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["actor", "-sequence"], name="audit_actor_id_seq_idx"),
        ),
        # Last, so no later step of this migration rebuilds the table under the triggers.
        migrations.RunPython(install_triggers, remove_triggers),
    ]
