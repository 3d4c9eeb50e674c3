# Indexes for the support lookup (filled in by the support-console work).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0002_roles")]
    operations: list = []
