"""Who may acknowledge check-ins, attest the criteria no metric covers and edit post-mortems:
every role that acts on a rollout, not the viewer. Written out here, like the roles migration,
so it keeps meaning what it meant when it ran."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSION = ("rollout", "observe_phase")
ROLES = ["release manager", "tech lead", "devops", "admin"]  # as rollout.roles.DEFAULT_PERMISSIONS


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make them exist now.
    app_config = apps.get_app_config("rollout")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    app_label, codename = PERMISSION
    permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    app_label, codename = PERMISSION
    permission = Permission.objects.filter(
        content_type__app_label=app_label, codename=codename
    ).first()
    if permission is not None:
        for group in Group.objects.filter(name__in=ROLES):
            group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [("rollout", "0007_rollouts_decisions")]

    operations = [migrations.RunPython(grant, revoke)]
