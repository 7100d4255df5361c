"""The buttons on messages: on a pending increase, a check-in falling due and a firing critical
alert, only when the Slack app that answers them is configured; otherwise the messages are as
they were, links only."""

import pytest

from integrations import slack as blocks
from metrics.models import LogSource
from outbox.models import Notification
from rollout.notifications import announce_check_in_due
from tests.metrics.test_notifications import fire_critical, resolve_critical
from tests.slack_actions.conftest import due_check_in, raise_to_b2b

pytestmark = pytest.mark.django_db


def buttons(payload) -> list[dict]:
    return [
        element
        for block in payload["blocks"]
        if block.get("block_id") == blocks.ACTIONS_BLOCK_ID
        for element in block["elements"]
    ]


def links(payload) -> list[str]:
    return [
        element["url"]
        for block in payload["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if "url" in element
    ]


def raise_request(environment, person):
    pending = raise_to_b2b(environment, person)
    notification = Notification.objects.get(related_object__startswith="percent-request:")
    return pending, notification.payload


def test_a_pending_increase_carries_approve_and_reject_naming_what_happens(
    slack, production_configured, release_manager
):
    pending, payload = raise_request(production_configured, release_manager)
    approve, reject = buttons(payload)
    assert (approve["action_id"], approve["value"]) == (blocks.APPROVE, str(pending.public_id))
    assert approve["style"] == "primary"
    assert approve["confirm"]["text"]["text"] == "production: 10% → 25%, tag B2b, requested by rita"
    assert (reject["action_id"], reject["value"]) == (blocks.REJECT, str(pending.public_id))
    assert "rita asks to raise the percent" in payload["text"]


def test_without_the_slack_app_the_pending_increase_is_announced_with_its_link_only(
    production_configured, release_manager, settings
):
    settings.SLACK_SIGNING_SECRET = "only-the-secret"
    _, payload = raise_request(production_configured, release_manager)
    assert not buttons(payload)
    assert links(payload) == [
        f"{settings.SITE_URL}/environments/{production_configured.public_id}/"
    ]


def test_a_check_in_falling_due_carries_acknowledge(slack, edge, settings):
    from tests.conftest import configured_environment

    check_in = due_check_in(configured_environment(edge))
    (acknowledge,) = buttons(announce_check_in_due(check_in).payload)
    assert (acknowledge["action_id"], acknowledge["value"]) == (
        blocks.ACKNOWLEDGE,
        str(check_in.public_id),
    )
    settings.SLACK_BOT_TOKEN = ""
    Notification.objects.all().delete()
    plain = announce_check_in_due(check_in).payload
    assert not buttons(plain) and len(links(plain)) == 1


def test_only_a_firing_critical_alert_carries_the_emergency_stop(
    slack, settings, production_configured
):
    settings.METRICS_ALERT_SETTLE_MINUTES = 0
    LogSource.objects.create(
        environment=production_configured, kind="directory", directory="/nonexistent"
    )
    fire_critical(production_configured)
    incidents = Notification.objects.filter(channel=Notification.Channel.SLACK_INCIDENTS)
    critical = incidents.get(subject__contains="native-5xx-critical is").payload
    (stop,) = buttons(critical)
    assert (stop["action_id"], stop["value"], stop["style"]) == (
        blocks.EMERGENCY_STOP,
        str(production_configured.public_id),
        "danger",
    )
    assert stop["text"]["text"] == "Emergency stop…" and "confirm" not in stop, "its dialog asks"
    fire_critical(production_configured, start=3)  # six minutes: the warning fires too
    resolve_critical(production_configured, start=6)
    others = incidents.exclude(pk=incidents.get(subject__contains="native-5xx-critical is").pk)
    subjects = " | ".join(n.subject for n in others)
    assert "native-5xx-warning is firing" in subjects, subjects
    assert "native-5xx-critical resolved" in subjects, subjects
    assert not any(buttons(n.payload) for n in others)


def test_the_outcome_replaces_our_buttons_and_keeps_the_rest():
    payload = blocks.with_buttons(
        blocks.message("text", link=("Open", "https://example.com")),
        [blocks.button("Approve", blocks.APPROVE, "id")],
    )
    after = blocks.with_outcome(payload["blocks"], "Approved by theo")
    assert after[:-1] == payload["blocks"][:-1]
    assert after[-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "Approved by theo"}],
    }
