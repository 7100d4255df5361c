"""The admin maps a Slack user to a dashboard user; every change of a mapping is audited, since it
decides whose name an approval or an emergency stop from Slack carries."""

import pytest

from rollout.models import AuditEntry
from slack_actions.models import SlackUser
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

URL = "/admin/slack_actions/slackuser/"


def test_an_admin_adds_changes_and_removes_a_mapping_each_audited(admin_user, devops, viewer):
    admin = client_for(admin_user)
    added = admin.post(URL + "add/", {"slack_user_id": "UDANA", "user": devops.pk})
    assert added.status_code == 302, added.content.decode()[:2000]
    mapping = SlackUser.objects.get()
    assert (mapping.user, mapping.source) == (devops, "admin")
    entry = AuditEntry.objects.get(action="slack.mapping_added")
    assert entry.actor == admin_user
    assert entry.after == {"slack_user_id": "UDANA", "user": "dana"}

    changed = admin.post(
        f"{URL}{mapping.pk}/change/", {"slack_user_id": "UDANA", "user": viewer.pk}
    )
    assert changed.status_code == 302
    entry = AuditEntry.objects.get(action="slack.mapping_changed")
    assert entry.before == {"slack_user_id": "UDANA", "user": "dana"}
    assert entry.after == {"slack_user_id": "UDANA", "user": "vera"}

    removed = admin.post(f"{URL}{mapping.pk}/delete/", {"post": "yes"})
    assert removed.status_code == 302 and not SlackUser.objects.exists()
    entry = AuditEntry.objects.get(action="slack.mapping_removed")
    assert entry.before == {"slack_user_id": "UDANA", "user": "vera"}


def test_an_admin_taking_over_an_email_match_makes_it_theirs(admin_user, devops):
    mapping = SlackUser.objects.create(
        slack_user_id="UDANA", user=devops, source="email", email="dana@example.com"
    )
    client_for(admin_user).post(
        f"{URL}{mapping.pk}/change/", {"slack_user_id": "UDANA", "user": devops.pk}
    )
    mapping.refresh_from_db()
    assert (mapping.source, mapping.email, mapping.checked_at) == ("admin", "", None)


def test_nobody_but_an_admin_maps_slack_users(release_manager, devops):
    response = client_for(release_manager, raise_request_exception=False).post(
        URL + "add/", {"slack_user_id": "URITA", "user": release_manager.pk}
    )
    assert response.status_code in (302, 403)
    assert not SlackUser.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="slack.mapping").exists()
