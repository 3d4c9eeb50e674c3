# The support lookup finds a session by its short id (`mcp_url.short_id`) or any longer start of
# its id: LIKE 'trs_cpnfo4nj%' in byte order. SQLite answers that range from the unique index on
# session_id (BINARY order); PostgreSQL needs an index in the "C" collation, as for the external
# id and email prefixes (0003). PostgreSQL only, hence SQL.
from django.db import migrations

INDEX = "toolroutersession_session_id_c_idx"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} "
            'ON sessions_app_toolroutersession (session_id COLLATE "C")'
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0010_refusal_windows")]
    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
