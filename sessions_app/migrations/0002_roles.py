"""Create the console's roles as groups with their permissions (a frozen copy of roles.py)."""

from django.db import migrations

ROLE_PERMISSIONS = {
    "Support": [
        "view_enduser",
        "view_toolroutersession",
        "view_toolkit",
        "reveal_mcp_url",
    ],
    "Session admin": [
        "view_enduser",
        "view_toolroutersession",
        "view_toolkit",
        "reveal_mcp_url",
        "add_enduser",
        "change_enduser",
        "create_session",
        "refresh_session",
        "change_session_toolkits",
        "delete_session",
        "manage_toolkit_allowlist",
        "sync_toolkit_catalog",
        "view_sessionoperation",
    ],
    "Auditor": [
        "view_auditevent",
        "view_access_report",
        "view_enduser",
        "view_toolroutersession",
        "view_toolkit",
    ],
}

# codename -> (model, human name). Default view/add/change permissions are normally made by
# post_migrate, which runs after all migrations, so they are made here the same way.
PERMISSIONS = {
    "view_enduser": ("enduser", "Can view end user"),
    "add_enduser": ("enduser", "Can add end user"),
    "change_enduser": ("enduser", "Can change end user"),
    "view_toolroutersession": ("toolroutersession", "Can view tool router session"),
    "reveal_mcp_url": ("toolroutersession", "Can reveal the full MCP URL of a session"),
    "create_session": ("toolroutersession", "Can create Tool Router sessions"),
    "refresh_session": ("toolroutersession", "Can refresh (replace) Tool Router sessions"),
    "change_session_toolkits": ("toolroutersession", "Can change a session's toolkits in place"),
    "delete_session": ("toolroutersession", "Can delete Tool Router sessions"),
    "view_toolkit": ("toolkit", "Can view toolkit"),
    "manage_toolkit_allowlist": ("toolkit", "Can allow or disallow toolkits"),
    "sync_toolkit_catalog": ("toolkit", "Can sync the toolkit catalog from Composio"),
    "view_sessionoperation": ("sessionoperation", "Can view session operation"),
    "view_auditevent": ("auditevent", "Can view audit event"),
    "view_access_report": ("auditevent", "Can view toolkit access reports"),
}


def create_roles(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    permissions = {}
    for codename, (model, name) in PERMISSIONS.items():
        content_type, _ = ContentType.objects.get_or_create(app_label="sessions_app", model=model)
        permissions[codename], _ = Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
    for group_name, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(*(permissions[c] for c in codenames))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
