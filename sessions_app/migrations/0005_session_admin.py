# Schema changes of the session-admin work, if any.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0004_audit_chain")]
    operations: list = []
