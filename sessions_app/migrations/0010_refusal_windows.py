# One row per open window of coalesced refusals (an actor, an operation, a minute): the first
# refusal is audited at once, the rest only counted here until the window's summary event.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('sessions_app', '0009_audit_keys'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='RefusalWindow',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('actor_key', models.CharField(max_length=40)),
                ('actor_username', models.CharField(blank=True, max_length=150)),
                ('operation', models.CharField(max_length=200)),
                ('window_start', models.DateTimeField(db_index=True)),
                ('count', models.PositiveIntegerField(default=1)),
                ('last_reason', models.CharField(blank=True, max_length=500)),
                ('last_details', models.JSONField(blank=True, default=dict)),
                ('actor', models.ForeignKey(db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('actor_key', 'operation', 'window_start'), name='refusalwindow_one_per_key')],
            },
        ),
    ]
