# Indexes for the support lookup.
#
# The lookup reads external id and email (lower-cased) prefixes in byte order, `limit + 1` rows at
# a time, and an exact session id.
# - SQLite: the unique index on external_id and enduser_email_lower_idx (0001) answer the range
#   queries the lookup sends there, in BINARY (byte) order. Nothing to add.
# - PostgreSQL: indexes in the "C" collation answer both LIKE 'x%' and ORDER BY ... COLLATE "C",
#   so even a one-letter prefix reads only the rows it shows. Meta.indexes cannot declare them
#   portably (SQLite has no "C" collation), hence SQL that runs on PostgreSQL only.
# - Display-name words (istartswith/icontains, i.e. UPPER(display_name) LIKE ...): a trigram GIN
#   index on PostgreSQL when the pg_trgm extension can be created (it is a trusted extension since
#   PostgreSQL 13); without it, and on SQLite, the name search scans the table.
# - Session ids: the unique index on session_id, on both.
import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

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


TRGM_INDEX = (
    "enduser_display_name_trgm_idx",
    "CREATE INDEX IF NOT EXISTS enduser_display_name_trgm_idx ON sessions_app_enduser "
    "USING gin ((UPPER(display_name::text)) gin_trgm_ops)",
)


def create_pg_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for _name, sql in PG_INDEXES:
        schema_editor.execute(sql)
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError:
        logger.warning("pg_trgm unavailable: the support name search will scan the table.")
        return
    schema_editor.execute(TRGM_INDEX[1])


def drop_pg_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _sql in [*PG_INDEXES, TRGM_INDEX]:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0002_roles")]
    operations = [migrations.RunPython(create_pg_indexes, drop_pg_indexes, elidable=False)]
