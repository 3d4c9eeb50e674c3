import django.db.models.deletion
from django.db import migrations, models


def fill_rollup(apps, schema_editor):
    """The rollup gains its active counts now (`rebuild_rollups` does the same later)."""
    from sessions_app.tool_router import rollups

    rollups.rebuild(apps=apps)


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0016_attention_state"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="sessiontoolkit",
            index=models.Index(fields=["toolkit", "session"], name="sessiontoolkit_toolkit_idx"),
        ),
        migrations.AlterField(
            model_name="sessiontoolkit",
            name="toolkit",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                to="sessions_app.toolkit",
            ),
        ),
        migrations.AddField(
            model_name="toolkitdailyrollup",
            name="active",
            field=models.IntegerField(default=0),
        ),
        migrations.RunPython(fill_rollup, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="toolroutersession",
            index=models.Index(
                condition=models.Q(
                    ("config_checked_at__isnull", False),
                    models.Q(("config_unexplained", []), _negated=True),
                ),
                fields=["-config_checked_at", "id"],
                name="session_changed_outside_idx",
            ),
        ),
    ]
