# The keyed audit chain: each event records the id of the HMAC key that signed it. Events written
# before carry "unkeyed-sha256" (their sha256 links stay as they are: no row is updated, which the
# append-only triggers would refuse), and the first anchor, written here, covers that segment.
import importlib

from django.db import migrations, models

chain_migration = importlib.import_module("sessions_app.migrations.0004_audit_chain")
UNKEYED_KEY_ID = "unkeyed-sha256"


def drop_sqlite_triggers(apps, schema_editor):
    # SQLite adds a NOT NULL column by rebuilding the table, which drops its triggers: they are
    # put back right after (PostgreSQL adds the column in place, its triggers untouched).
    if schema_editor.connection.vendor == "sqlite":
        chain_migration._run(schema_editor, chain_migration.SQLITE_DROP)


def install_sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        chain_migration._run(schema_editor, chain_migration.SQLITE_TRIGGERS)


def anchor_unkeyed_segment(apps, schema_editor):
    # verify_audit accepts unkeyed events only up to the last anchor that names them unkeyed.
    from sessions_app.chain.anchors import anchor_head

    anchor = anchor_head(apps.get_model("sessions_app", "AuditEvent"))
    if anchor is not None:
        print(f"\n  Anchored the unkeyed audit log up to event #{anchor.sequence}.", end="")


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0008_reveal_limit")]

    operations = [
        migrations.RunPython(drop_sqlite_triggers, install_sqlite_triggers),
        migrations.AddField(
            model_name="auditevent",
            name="key_id",
            field=models.CharField(default=UNKEYED_KEY_ID, max_length=40),
            preserve_default=False,
        ),
        migrations.RunPython(install_sqlite_triggers, drop_sqlite_triggers),
        migrations.RunPython(anchor_unkeyed_segment, migrations.RunPython.noop),
    ]
