# What reconcile_sessions did about an intent: a note and when it closed it.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0006_bulk_jobs")]

    operations = [
        migrations.AddField(
            model_name="sessionoperation",
            name="resolution",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name="sessionoperation",
            name="resolved_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
