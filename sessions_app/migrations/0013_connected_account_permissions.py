"""The connected-account permissions and who holds them (a frozen copy of roles.py's change):
Support and Session admin may send reconnect links; only Session admin may enable or disable a
user's connected account."""

from django.db import migrations

PERMISSIONS = {
    "create_connect_link": "Can send an end user a link to reconnect a toolkit",
    "change_connected_account": "Can enable or disable an end user's connected account",
}
GRANTS = {
    "Support": ["create_connect_link"],
    "Session admin": ["create_connect_link", "change_connected_account"],
}


def grant(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(
        app_label="sessions_app", model="toolroutersession"
    )
    permissions = {
        codename: Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )[0]
        for codename, name in PERMISSIONS.items()
    }
    for group_name, codenames in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(*(permissions[c] for c in codenames))


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(
        content_type__app_label="sessions_app", codename__in=PERMISSIONS
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0012_session_drift")]

    operations = [
        migrations.AlterModelOptions(
            name="toolroutersession",
            options={
                "ordering": ["-created_at"],
                "permissions": [
                    ("reveal_mcp_url", "Can reveal the full MCP URL of a session"),
                    ("create_session", "Can create Tool Router sessions"),
                    ("refresh_session", "Can refresh (replace) Tool Router sessions"),
                    ("change_session_toolkits", "Can change a session's toolkits in place"),
                    ("delete_session", "Can delete Tool Router sessions"),
                    ("create_connect_link", PERMISSIONS["create_connect_link"]),
                    ("change_connected_account", PERMISSIONS["change_connected_account"]),
                ],
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
