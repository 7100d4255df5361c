"""The admin role sees failed log-ins and lockouts (django-axes) and may lift a lock. Written out
here, like the roles migration, so it keeps meaning what it meant when it ran."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSIONS = [
    ("axes", "view_accessattempt"),
    ("axes", "delete_accessattempt"),
    ("axes", "view_accesslog"),
    ("axes", "view_accessfailurelog"),
]
ROLE = "admin"  # as rollout.roles.DEFAULT_PERMISSIONS


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make them exist now.
    app_config = apps.get_app_config("axes")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = [
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
        for app_label, codename in PERMISSIONS
    ]
    for group in Group.objects.filter(name=ROLE):
        group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for app_label, codename in PERMISSIONS:
        permission = Permission.objects.filter(
            content_type__app_label=app_label, codename=codename
        ).first()
        if permission is not None:
            for group in Group.objects.filter(name=ROLE):
                group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("rollout", "0012_audit_keyed_chain"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
