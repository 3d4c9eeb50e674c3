# Schema changes of the session-admin work.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0004_audit_chain")]
    operations: list = [
        # The per-end-user lock's backstop: at most one pending call to Composio per end user.
        migrations.AddConstraint(
            model_name="sessionoperation",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state", "pending")),
                fields=("end_user",),
                name="one_pending_operation_per_end_user",
            ),
        ),
    ]
