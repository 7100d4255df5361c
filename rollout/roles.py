"""The roles people hold, as Django groups; see docs/roles.md.

Migration 0002 created them. ``ensure_roles`` runs after every ``migrate`` (and ``flush``) and
re-creates a role group that is missing, with its default permissions; it leaves existing groups
as an admin may have tuned them.
"""

from django.utils.translation import gettext_lazy

VIEWER = "viewer"
RELEASE_MANAGER = "release manager"
TECH_LEAD = "tech lead"
DEVOPS = "devops"
ADMIN = "admin"

ALL = (VIEWER, RELEASE_MANAGER, TECH_LEAD, DEVOPS, ADMIN)
# The group names are the roles' ids (settings and the company login's OIDC_ROLE_GROUPS name
# them); a page names a role in its reader's language (``{{ group.name|role_name }}``).
NAMES = {
    VIEWER: gettext_lazy("viewer"),
    RELEASE_MANAGER: gettext_lazy("release manager"),
    TECH_LEAD: gettext_lazy("tech lead"),
    DEVOPS: gettext_lazy("DevOps"),
    ADMIN: gettext_lazy("admin"),
}

# Every role reads the same models: their Django "view" permissions.
READ = [
    *(
        f"rollout.view_{model}"
        for model in (
            "service",
            "environment",
            "rolloutplan",
            "phase",
            "desiredconfig",
            "configchange",
            "auditentry",
        )
    ),
    "outbox.view_notification",
]
# The admin sets up services, environments and their plans (and removes a plan's phase).
SET_UP = [
    "rollout.connect_environment",
    *(
        f"rollout.{act}_{model}"
        for model in ("service", "environment", "rolloutplan", "phase")
        for act in ("add", "change")
    ),
    "rollout.delete_phase",
]
DEFAULT_PERMISSIONS = {
    VIEWER: READ,
    RELEASE_MANAGER: READ
    + ["rollout.request_change", "rollout.rollback", "rollout.emergency_stop"]
    + ["rollout.observe_phase", "monitoring.run_sample"],
    TECH_LEAD: READ
    + ["rollout.approve_increase", "rollout.sign_decision", "rollout.observe_phase"]
    + ["monitoring.run_sample"],
    DEVOPS: READ
    + ["rollout.emergency_stop", "rollout.rollback", "rollout.sign_decision"]
    + ["rollout.observe_phase", "monitoring.run_sample"],
    ADMIN: READ
    + ["monitoring.run_sample", "rollout.request_change", "rollout.rollback"]
    + ["rollout.emergency_stop", "rollout.approve_increase", "rollout.sign_decision"]
    + ["rollout.observe_phase"]
    + SET_UP
    # log-in attempts and lockouts (django-axes); deleting an attempt lifts its lock
    + ["axes.view_accessattempt", "axes.delete_accessattempt", "axes.view_accesslog"]
    + ["axes.view_accessfailurelog"]
    # which dashboard user acts for a Slack user, and the presses from Slack (slack_actions)
    + ["slack_actions.view_slackuser", "slack_actions.add_slackuser"]
    + ["slack_actions.change_slackuser", "slack_actions.delete_slackuser"]
    + ["slack_actions.view_slackaction"]
    # machine identities for pipelines and their service tokens (api/)
    + ["rollout.add_serviceaccount", "rollout.change_serviceaccount"]
    + ["rollout.view_serviceaccount"],
}


def ensure_roles(sender=None, **kwargs):
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group

    if Group.objects.filter(name__in=ALL).count() == len(ALL):
        return
    wanted = {name for names in DEFAULT_PERMISSIONS.values() for name in names}
    if len(_permissions(wanted)) < len(wanted):
        # Apps emit post_migrate one after another; make sure every app's permissions exist now.
        for app_config in apps.get_app_configs():
            create_permissions(app_config, verbosity=0)
    permissions = _permissions(wanted)
    for role, names in DEFAULT_PERMISSIONS.items():
        group, created = Group.objects.get_or_create(name=role)
        if created:
            group.permissions.add(*(permissions[name] for name in names if name in permissions))


def _permissions(names) -> dict:
    """The permissions named "app_label.codename" that exist, by that name, in one query."""
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    query = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    return {
        f"{p.content_type.app_label}.{p.codename}": p
        for p in Permission.objects.filter(query).select_related("content_type")
    }
