# Audit hash chain and append-only triggers (filled in by the audit work).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0003_lookup_indexes")]
    operations: list = []
