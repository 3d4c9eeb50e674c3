# Bulk jobs and their items (filled in by the bulk-operations work).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0005_session_admin")]
    operations: list = []
