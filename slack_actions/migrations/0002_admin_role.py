"""The admin role maps Slack users to dashboard users and reads the presses from Slack. Written
out here, like the roles migration, so it keeps meaning what it meant when it ran."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSIONS = [
    "view_slackuser",
    "add_slackuser",
    "change_slackuser",
    "delete_slackuser",
    "view_slackaction",
]
ROLE = "admin"  # as rollout.roles.DEFAULT_PERMISSIONS


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make them exist now.
    app_config = apps.get_app_config("slack_actions")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    granted = Permission.objects.filter(
        content_type__app_label="slack_actions", codename__in=PERMISSIONS
    )
    for group in Group.objects.filter(name=ROLE):
        group.permissions.add(*granted)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    granted = Permission.objects.filter(
        content_type__app_label="slack_actions", codename__in=PERMISSIONS
    )
    for group in Group.objects.filter(name=ROLE):
        group.permissions.remove(*granted)


class Migration(migrations.Migration):
    dependencies = [
        ("slack_actions", "0001_initial"),
        ("rollout", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
