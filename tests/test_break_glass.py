"""Local passwords as break-glass, over real HTTP: with LOCAL_PASSWORD_LOGIN off only the named
break-glass accounts log in with a password, each such log-in audited and announced in
#incidents; the lockout (django-axes) still counts every refused attempt."""

import pytest

from outbox.models import Notification
from rollout.models import AuditEntry
from tests.conftest import PASSWORD
from tests.test_login_lockout import log_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def break_glass(settings, devops):
    """dana (DevOps) is the break-glass account; #incidents has a webhook."""
    settings.BREAK_GLASS_ACCOUNTS = ["dana"]
    settings.SLACK_INCIDENTS_WEBHOOK_URL = "http://127.0.0.1:9/incidents"
    return devops


@pytest.fixture
def passwords_off(settings, break_glass):
    settings.LOCAL_PASSWORD_LOGIN = False


def test_with_passwords_off_only_a_break_glass_account_logs_in(live_server, passwords_off, viewer):
    refused = log_in(live_server.url, "vera", PASSWORD)
    assert refused.status_code == 200
    assert "Please enter a correct username and password" in refused.text
    (entry,) = AuditEntry.objects.filter(action="auth.login_failed")
    assert entry.detail == (
        "username 'vera': password log-in is off; only break-glass accounts may use it"
    )

    admitted = log_in(live_server.url, "dana", PASSWORD)
    assert admitted.status_code == 302 and admitted.headers["location"] == "/"


def test_a_break_glass_log_in_is_audited_and_announced_in_incidents(live_server, passwords_off):
    log_in(live_server.url, "dana", PASSWORD)

    (entry,) = AuditEntry.objects.filter(action="auth.break_glass")
    assert entry.actor.username == "dana" and entry.client_ip == "127.0.0.1"
    assert entry.detail == "break-glass log-in with a local password (local passwords are off)"
    (message,) = Notification.objects.all()
    assert message.channel == Notification.Channel.SLACK_INCIDENTS
    assert message.related_object == f"break-glass:{entry.pk}"
    assert message.payload["text"].startswith(":rotating_light: Break-glass log-in: *dana*")


def test_with_passwords_on_everyone_logs_in_and_break_glass_is_still_announced(
    live_server, break_glass, viewer
):
    assert log_in(live_server.url, "vera", PASSWORD).status_code == 302
    assert log_in(live_server.url, "dana", PASSWORD).status_code == 302

    (entry,) = AuditEntry.objects.filter(action="auth.break_glass")
    assert entry.actor.username == "dana"
    assert Notification.objects.filter(channel=Notification.Channel.SLACK_INCIDENTS).count() == 1


def test_the_lockout_counts_refused_names_and_wrong_break_glass_passwords(
    live_server, passwords_off, viewer
):
    for _ in range(5):
        log_in(live_server.url, "vera", PASSWORD)
        log_in(live_server.url, "dana", "wrong-password")

    for username in ("vera", "dana"):
        locked = log_in(live_server.url, username, PASSWORD)
        assert locked.status_code == 429 and "locked from your address" in locked.text
    assert not AuditEntry.objects.filter(action="auth.break_glass").exists()


def test_the_log_in_page_says_what_passwords_are_for(client, passwords_off, company_login):
    page = client.get("/login/").content.decode()

    assert 'id="company-login" href="/oidc/authenticate/"' in page
    assert "<h2>Break-glass log-in</h2>" in page and "announced in #incidents" in page
    assert '<form method="post" action="/login/">' in page  # works without JavaScript


def test_the_admin_log_in_follows_the_same_rule(live_server, passwords_off, admin_user):
    refused = log_in(live_server.url, "adam", PASSWORD, path="/admin/login/")
    assert refused.status_code == 200 and "Please enter a correct username" in refused.text
    assert AuditEntry.objects.get(action="auth.login_failed").detail.endswith(
        "break-glass accounts may use it"
    )
