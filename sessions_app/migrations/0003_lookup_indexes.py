# Indexes for the support lookup.
#
# The lookup reads external id and email (lower-cased) prefixes in byte order, `limit + 1` rows at
# a time, and an exact session id.
# - SQLite: the unique index on external_id and enduser_email_lower_idx (0001) answer the range
#   queries the lookup sends there, in BINARY (byte) order. Nothing to add.
# - PostgreSQL: indexes in the "C" collation answer both LIKE 'x%' and ORDER BY ... COLLATE "C",
#   so even a one-letter prefix reads only the rows it shows. Meta.indexes cannot declare them
#   portably (SQLite has no "C" collation), hence SQL that runs on PostgreSQL only.
# - Session ids: the unique index on session_id, on both.
from django.db import migrations

PG_INDEXES = [
    (
        "enduser_external_id_c_idx",
        'CREATE INDEX IF NOT EXISTS enduser_external_id_c_idx '
        'ON sessions_app_enduser (external_id COLLATE "C")',
    ),
    (
        "enduser_email_lower_c_idx",
        'CREATE INDEX IF NOT EXISTS enduser_email_lower_c_idx '
        'ON sessions_app_enduser ((LOWER(email)) COLLATE "C")',
    ),
]


def create_pg_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for _name, sql in PG_INDEXES:
        schema_editor.execute(sql)


def drop_pg_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _sql in PG_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0002_roles")]
    operations = [migrations.RunPython(create_pg_indexes, drop_pg_indexes, elidable=False)]
