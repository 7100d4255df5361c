"""The dashboard user behind a Slack user: an admin's mapping, or the one active account with the
email Slack confirmed (users.info on the local Slack), looked up again after a while."""

from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from integrations.slack_api import WebApi
from rollout.models import AuditEntry
from slack_actions.identities import dashboard_user
from slack_actions.models import SlackUser
from tests.support.slack import BOT_TOKEN

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(slack):
    with httpx.Client(timeout=2) as client:
        yield WebApi(token=BOT_TOKEN, base_url=slack.api_url, client=client)


@pytest.fixture
def theo(tech_lead):
    tech_lead.email = "theo@example.com"
    tech_lead.save()
    return tech_lead


def who(api, slack_user_id="U1", now=None):
    return dashboard_user(slack_user_id, api=api, now=now or timezone.now())


def test_a_confirmed_email_maps_once_and_is_remembered(slack, api, theo):
    slack.add_user("U1", "THEO@example.com")
    assert who(api).user == theo
    assert who(api).user == theo
    assert len(slack.calls_of("users.info")) == 1, "the match is remembered"
    mapping = SlackUser.objects.get()
    assert (mapping.source, mapping.email) == ("email", "THEO@example.com")
    entry = AuditEntry.objects.get(action="slack.user_matched")
    assert entry.actor_label == "slack" and entry.after == {
        "user": "theo",
        "email": "THEO@example.com",
    }


@pytest.mark.parametrize(
    "slack_user, why",
    [
        ({"confirmed": False}, "is not confirmed"),
        ({"deleted": True}, "Only a person's active Slack account can act"),
        ({"bot": True}, "Only a person's active Slack account can act"),
        ({"email": ""}, "Slack shares no email address for you"),
        ({"email": "someone@else.example"}, "No dashboard account has the email address"),
    ],
)
def test_no_match_says_why_and_remembers_nothing(slack, api, theo, slack_user, why):
    slack.add_user("U1", slack_user.pop("email", "theo@example.com"), **slack_user)
    identity = who(api)
    assert identity.user is None and why in identity.why and identity.retry_in is None
    assert not SlackUser.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="slack.").exists()


def test_two_accounts_with_the_email_match_neither(slack, api, theo, release_manager):
    release_manager.email = "theo@example.com"
    release_manager.save()
    slack.add_user("U1", "theo@example.com")
    assert "More than one dashboard account" in who(api).why


def test_an_admins_mapping_wins_without_asking_slack(slack, api, theo, viewer):
    SlackUser.objects.create(slack_user_id="U1", user=viewer)
    slack.add_user("U1", "theo@example.com")
    assert who(api).user == viewer
    assert not slack.calls


def test_a_deactivated_account_does_not_act(slack, api, viewer):
    SlackUser.objects.create(slack_user_id="U1", user=viewer)
    viewer.is_active = False
    viewer.save()
    assert who(api).why == "Your dashboard account is deactivated."


def test_an_email_match_is_checked_again_and_forgotten_when_the_email_changed(
    slack, api, theo, settings
):
    slack.add_user("U1", "theo@example.com")
    assert who(api).user == theo
    slack.add_user("U1", "theo@another-company.example")
    later = timezone.now() + timedelta(hours=settings.SLACK_EMAIL_RECHECK_HOURS, minutes=1)
    assert who(api, now=later).user is None
    assert not SlackUser.objects.exists()
    entry = AuditEntry.objects.get(action="slack.user_unmatched")
    assert entry.before == {"user": "theo"} and entry.via == "slack:U1"


def test_slack_busy_asks_again_later_and_slack_refusing_says_so(slack, api, theo):
    slack.answer_next(
        "users.info", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "4"}
    )
    busy = who(api)
    assert busy.user is None and busy.retry_in == 4
    slack.answer_next("users.info", 200, {"ok": False, "error": "missing_scope"})
    refused = who(api)
    assert refused.retry_in is None and "missing_scope" in refused.why
