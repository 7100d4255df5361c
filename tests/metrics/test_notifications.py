"""Alert notifications against local receivers speaking Slack's incoming-webhook and PagerDuty's
Events API v2 protocols, including their error answers."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from metrics import alerts
from metrics.models import AlertState, LogSource
from outbox import notify
from outbox.models import Notification
from outbox.tasks import sweep_unsent_notifications
from rollout.models import DesiredConfig
from tests.conftest import make_environment, wait_for
from tests.metrics.test_alert_rules import at, minute_of_traffic

pytestmark = pytest.mark.django_db


@pytest.fixture
def env(edge, settings):
    settings.METRICS_ALERT_SETTLE_MINUTES = 0
    settings.SITE_URL = "https://rollout.example.com"
    environment = make_environment(edge)
    DesiredConfig.objects.create(environment=environment, canary_percent=10, canary_tag="B2a")
    LogSource.objects.create(environment=environment, kind="directory", directory="/nonexistent")
    return environment


def fire_critical(env, start=0):
    for n in range(start, start + 3):
        minute_of_traffic(env, n, native=1000, native_5xx=50)
    LogSource.objects.filter(environment=env).update(newest_log_at=at(start + 3))
    return alerts.evaluate_environment(env.pk, now=at(start + 3))


def resolve_critical(env, start=3):
    minute_of_traffic(env, start, native=1000, native_5xx=0)
    LogSource.objects.filter(environment=env).update(newest_log_at=at(start + 1))
    return alerts.evaluate_environment(env.pk, now=at(start + 1))


def only(channel, **filters):
    return Notification.objects.get(channel=channel, **filters)


def test_a_firing_alert_goes_to_incidents_and_pages_with_its_figures_and_links(
    env, slack_receiver, pagerduty_receiver
):
    fire_critical(env)
    slack = only(Notification.Channel.SLACK_INCIDENTS, subject__contains="native-5xx-critical")
    page = only(Notification.Channel.PAGERDUTY, subject__contains="native-5xx-critical")
    assert notify.deliver(slack.pk) is None and notify.deliver(page.pk) is None

    [message] = [b for b in slack_receiver.bodies() if "native-5xx-critical" in b["text"]]
    assert "pix-immo-api / production" in message["text"] and "CRITICAL" in message["text"]
    shown = str(message["blocks"])
    assert "Native 5xx" in shown and "5.0%" in shown and "1000" in shown
    environment_url = f"https://rollout.example.com/environments/{env.public_id}/"
    assert environment_url in shown

    [event] = [
        b
        for b in pagerduty_receiver.bodies()
        if b["event_action"] == "trigger" and "critical" in b["dedup_key"]
    ]
    assert event["routing_key"] == "R0UT1NGKEY0123456789012345678901"
    assert event["dedup_key"] == f"rollout-control/{env.public_id}/native-5xx-critical"
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["source"] == "pix-immo-api / production"
    assert "native-5xx-critical" in event["payload"]["summary"]
    assert event["payload"]["custom_details"]["native_5xx_percent"] == 5.0
    assert event["links"][0]["href"] == environment_url
    assert pagerduty_receiver.received[0]["path"] == "/v2/enqueue"

    slack.refresh_from_db()
    page.refresh_from_db()
    assert (slack.state, slack.last_status, slack.last_answer) == ("sent", 200, "ok")
    assert (page.state, page.last_status) == ("sent", 202)
    assert "Event processed" in page.last_answer
    assert "routing_key" not in page.payload, "the routing key is a secret: not stored"


def test_resolved_sends_a_resolve_with_the_same_dedup_key(env, slack_receiver, pagerduty_receiver):
    fire_critical(env)
    resolve_critical(env)
    for notification in Notification.objects.order_by("id"):
        notify.deliver(notification.pk)
    actions = [
        (body["event_action"], body["dedup_key"])
        for body in pagerduty_receiver.bodies()
        if body["dedup_key"].endswith("native-5xx-critical")
    ]
    key = f"rollout-control/{env.public_id}/native-5xx-critical"
    assert actions == [("trigger", key), ("resolve", key)]
    assert any("resolved" in body["text"] for body in slack_receiver.bodies())


def test_pending_alerts_announce_nothing(env, slack_receiver, pagerduty_receiver):
    minute_of_traffic(env, 0, native=1000, native_5xx=50)
    LogSource.objects.filter(environment=env).update(newest_log_at=at(1))
    alerts.evaluate_environment(env.pk, now=at(1))
    assert AlertState.objects.get(rule__name="native-5xx-critical").state == "pending"
    assert not Notification.objects.exists()


def test_nothing_is_queued_for_channels_not_configured(env, settings):
    settings.SLACK_INCIDENTS_WEBHOOK_URL = ""
    settings.PAGERDUTY_ROUTING_KEY = ""
    fire_critical(env)
    assert AlertState.objects.get(rule__name="native-5xx-critical").state == "firing"
    assert not Notification.objects.exists()


def test_slack_429_is_retried_after_retry_after(env, slack_receiver, settings):
    settings.PAGERDUTY_ROUTING_KEY = ""
    slack_receiver.answer(429, "rate_limited", {"Retry-After": "1"})
    fire_critical(env)
    notification = only(Notification.Channel.SLACK_INCIDENTS, subject__contains="critical")
    assert notify.deliver(notification.pk) == 1.0
    notification.refresh_from_db()
    assert (notification.state, notification.last_status) == ("queued", 429)
    assert notification.next_attempt_at > timezone.now() + timedelta(seconds=0.5)
    assert notify.deliver(notification.pk) is None  # too early: not sent again
    assert len(slack_receiver.received) == 1
    time.sleep(1.05)
    assert notify.deliver(notification.pk) is None
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == ("sent", 2)


def test_slack_invalid_payload_fails_without_a_retry(env, slack_receiver, settings):
    settings.PAGERDUTY_ROUTING_KEY = ""
    slack_receiver.answer(400, "invalid_payload")
    fire_critical(env)
    notification = only(Notification.Channel.SLACK_INCIDENTS, subject__contains="critical")
    assert notify.deliver(notification.pk) is None
    notification.refresh_from_db()
    assert (notification.state, notification.last_status) == ("failed", 400)
    assert notification.last_answer == "invalid_payload"


def test_pagerduty_400_is_recorded_and_not_retried(env, pagerduty_receiver, settings):
    settings.SLACK_INCIDENTS_WEBHOOK_URL = ""
    pagerduty_receiver.answer(
        400,
        '{"status":"invalid event","message":"Event object is invalid",'
        '"errors":["Length of \'routing_key\' is incorrect"]}',
    )
    fire_critical(env)
    page = only(Notification.Channel.PAGERDUTY, subject__contains="critical")
    assert notify.deliver(page.pk) is None
    page.refresh_from_db()
    assert (page.state, page.last_status) == ("failed", 400)
    assert "Event object is invalid" in page.last_answer and "routing_key" in page.last_answer


@pytest.mark.parametrize("status", [429, 500, 503])
def test_pagerduty_429_and_5xx_are_retried_with_backoff(env, pagerduty_receiver, settings, status):
    settings.SLACK_INCIDENTS_WEBHOOK_URL = ""
    pagerduty_receiver.answer(
        status,
        '{"status":"throttle","message":"Requests for this service are arriving too quickly"}',
    )
    fire_critical(env)
    page = only(Notification.Channel.PAGERDUTY, subject__contains="critical")
    retry_in = notify.deliver(page.pk)
    assert retry_in is not None and 0 < retry_in <= 2
    page.refresh_from_db()
    assert (page.state, page.last_status, page.attempts) == ("queued", status, 1)


def test_a_resolve_waits_for_its_trigger(env, pagerduty_receiver, settings):
    settings.SLACK_INCIDENTS_WEBHOOK_URL = ""
    pagerduty_receiver.answer(429, "{}", {"Retry-After": "1"})
    fire_critical(env)
    trigger = only(Notification.Channel.PAGERDUTY, subject__contains="trigger: ")
    assert notify.deliver(trigger.pk) == 1.0  # throttled: the trigger is still queued
    resolve_critical(env)
    resolve = only(Notification.Channel.PAGERDUTY, event_action="resolve")
    assert notify.deliver(resolve.pk) == notify.RESOLVE_WAIT_SECONDS
    assert [b["event_action"] for b in pagerduty_receiver.bodies()] == ["trigger"]
    time.sleep(1.05)
    assert notify.deliver(trigger.pk) is None
    assert notify.deliver(resolve.pk) is None
    assert [b["event_action"] for b in pagerduty_receiver.bodies()] == [
        "trigger",
        "trigger",
        "resolve",
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_worker_delivers_through_429s(
    env, slack_receiver, pagerduty_receiver, start_worker, settings
):
    start_worker(
        env={
            "SLACK_INCIDENTS_WEBHOOK_URL": settings.SLACK_INCIDENTS_WEBHOOK_URL,
            "PAGERDUTY_EVENTS_URL": settings.PAGERDUTY_EVENTS_URL,
            "PAGERDUTY_ROUTING_KEY": settings.PAGERDUTY_ROUTING_KEY,
        }
    )
    slack_receiver.answer(429, "rate_limited", {"Retry-After": "1"})
    pagerduty_receiver.answer(500, "oops")
    fire_critical(env)  # queues after commit: the worker picks them up
    sweep_unsent_notifications.delay()
    wait_for(
        lambda: (
            Notification.objects.count() == 2
            and not Notification.objects.exclude(state="sent").exists()
        ),
        timeout=30,
        message="every notification to be sent",
    )
    retried = Notification.objects.filter(attempts=2)
    assert {n.channel for n in retried} == {"slack_incidents", "pagerduty"}
