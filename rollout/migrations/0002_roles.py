"""Groups for the five roles and the permissions each holds.

The mapping is written out here (not imported) so this migration keeps meaning what it meant
when it ran; a later change of roles is a new migration.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

READ = [
    "rollout.view_service",
    "rollout.view_environment",
    "rollout.view_rolloutplan",
    "rollout.view_phase",
    "rollout.view_desiredconfig",
    "rollout.view_configchange",
    "rollout.view_auditentry",
    "monitoring.view_notification",
]
ROLES = {
    "viewer": READ,
    "release manager": READ
    + [
        "rollout.request_change",
        "rollout.rollback",
        "rollout.emergency_stop",
    ],
    "tech lead": READ + ["rollout.approve_increase", "rollout.sign_decision"],
    "devops": READ
    + [
        "rollout.emergency_stop",
        "rollout.rollback",
        "rollout.sign_decision",
    ],
    "admin": READ
    + [
        "rollout.request_change",
        "rollout.rollback",
        "rollout.emergency_stop",
        "rollout.approve_increase",
        "rollout.sign_decision",
        "rollout.connect_environment",
        "rollout.add_service",
        "rollout.change_service",
        "rollout.add_environment",
        "rollout.change_environment",
        "rollout.add_rolloutplan",
        "rollout.change_rolloutplan",
        "rollout.add_phase",
        "rollout.change_phase",
        "rollout.delete_phase",
    ],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make them exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, names in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = []
        for name in names:
            app_label, codename = name.split(".")
            permissions.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(permissions)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("rollout", "0001_initial"),
        ("monitoring", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
