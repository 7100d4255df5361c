import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from rollout import roles

pytestmark = pytest.mark.django_db


def _perms(name):
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name=name).permissions.all()
    }


def test_the_migration_created_every_role_with_its_permissions():
    for role, expected in roles.DEFAULT_PERMISSIONS.items():
        assert set(expected) <= _perms(role)


def test_only_admins_connect_and_only_approvers_approve():
    holders = {role for role in roles.ALL if "rollout.approve_increase" in _perms(role)}
    assert holders == {roles.TECH_LEAD, roles.ADMIN}
    holders = {role for role in roles.ALL if "rollout.connect_environment" in _perms(role)}
    assert holders == {roles.ADMIN}


def test_a_deleted_role_comes_back_after_migrate():
    Group.objects.filter(name=roles.DEVOPS).delete()
    call_command("migrate", verbosity=0)
    assert _perms(roles.DEVOPS) == set(roles.DEFAULT_PERMISSIONS[roles.DEVOPS])


def test_the_notification_permissions_moved_with_the_model_to_the_outbox(db):
    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType

    assert not ContentType.objects.filter(app_label="monitoring", model="notification").exists()
    viewers = Group.objects.get(name=roles.VIEWER)
    assert viewers.permissions.filter(
        content_type__app_label="outbox", codename="view_notification"
    ).exists()
