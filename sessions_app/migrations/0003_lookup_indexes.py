# Indexes for the support lookup.
#
# External id and session id prefixes/exact matches already have indexes: their unique indexes
# (on PostgreSQL Django adds a varchar_pattern_ops "_like" index beside each unique CharField, which
# answers LIKE 'x%'). An email prefix is matched on lower(email): SQLite answers its range query from
# enduser_email_lower_idx; PostgreSQL needs the same expression with text_pattern_ops for LIKE, an
# index Django's Meta.indexes cannot declare portably (OpClass() breaks SQLite), hence raw SQL that
# runs on PostgreSQL only.
from django.db import migrations

PG_INDEXES = [
    (
        "enduser_email_lower_like_idx",
        "CREATE INDEX IF NOT EXISTS enduser_email_lower_like_idx "
        "ON sessions_app_enduser (LOWER(email) text_pattern_ops)",
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
