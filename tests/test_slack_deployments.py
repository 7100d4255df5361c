"""#deployments announcements of config changes, against a local Slack webhook receiver."""

import pytest
from django.test import Client
from django.urls import reverse

from integrations.kv_value import CanarySettings
from outbox import notify
from outbox.models import Notification
from rollout import kv_writer
from rollout.models import ConfigChange
from rollout.notifications import announce_change_outcome
from tests.conftest import PASSWORD, make_environment, wait_for
from tests.support.changes import change_config, first_config
from tests.support.webhooks import WebhookReceiver

B2A = CanarySettings(10, "B2a", False)


@pytest.fixture
def slack(settings):
    with WebhookReceiver() as receiver:
        settings.SLACK_DEPLOYMENTS_WEBHOOK_URL = receiver.url
        yield receiver


def _in_effect_change(edge):
    environment = make_environment(edge)
    change = first_config(environment, B2A, reason="runbook 1.2")
    kv_writer.reconcile(environment.pk)
    change.refresh_from_db()
    change.mark_in_effect()
    return change


@pytest.mark.django_db
def test_an_in_effect_change_is_announced_once_with_a_link(edge, slack):
    change = _in_effect_change(edge)
    first = announce_change_outcome(change)
    assert announce_change_outcome(change) is None, "a second announcement adds nothing"
    assert notify.deliver(first.pk) is None
    first.refresh_from_db()
    assert first.state == "sent" and first.last_status == 200 and first.last_answer == "ok"
    (message,) = slack.received
    payload = message["json"]
    assert "10%, tag B2a is in effect" in payload["text"]
    button = payload["blocks"][-1]["elements"][0]
    assert button["url"].endswith(f"/environments/{change.environment.public_id}/")
    fields = " ".join(field["text"] for field in payload["blocks"][1]["fields"])
    assert "runbook 1.2" in fields and "test" in fields


@pytest.mark.django_db
def test_slack_429_is_retried_after_its_retry_after(edge, slack):
    notification = announce_change_outcome(_in_effect_change(edge))
    slack.answer(429, "rate_limited", {"Retry-After": "7"})
    assert notify.deliver(notification.pk) == 7
    notification.refresh_from_db()
    assert notification.state == "queued" and notification.last_status == 429
    assert notify.deliver(notification.pk) is None, "not before its time"
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=None)
    notify.deliver(notification.pk)
    notification.refresh_from_db()
    assert notification.state == "sent" and notification.attempts == 2
    assert len(slack.received) == 2


@pytest.mark.django_db
def test_invalid_payload_is_a_recorded_failure_without_retry(edge, slack):
    notification = announce_change_outcome(_in_effect_change(edge))
    slack.answer(400, "invalid_payload")
    assert notify.deliver(notification.pk) is None
    notification.refresh_from_db()
    assert notification.state == "failed" and notification.last_answer == "invalid_payload"
    assert notification.last_status == 400


@pytest.mark.django_db
def test_an_unreachable_webhook_is_retried_then_failed(edge, settings):
    settings.SLACK_DEPLOYMENTS_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    settings.NOTIFY_MAX_ATTEMPTS = 2
    notification = announce_change_outcome(_in_effect_change(edge))
    assert notify.deliver(notification.pk) is not None
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=None)
    assert notify.deliver(notification.pk) is None
    notification.refresh_from_db()
    assert notification.state == "failed" and "unreachable" in notification.last_answer


@pytest.mark.django_db
def test_nothing_is_sent_without_a_webhook_and_the_page_says_so(edge, release_manager):
    change = _in_effect_change(edge)
    assert announce_change_outcome(change) is None
    assert not Notification.objects.exists()
    client = Client()
    client.login(username=release_manager.username, password=PASSWORD)
    page = client.get(reverse("rollout:environment", args=[change.environment.public_id]))
    assert b"Slack #deployments is not configured" in page.content


@pytest.mark.django_db(transaction=True)
def test_the_worker_announces_in_effect_and_failed_changes(edge, start_worker):
    with WebhookReceiver() as slack:
        start_worker(env={"SLACK_DEPLOYMENTS_WEBHOOK_URL": slack.url, "KV_WRITE_MAX_ATTEMPTS": 1})
        environment = make_environment(edge)
        ok = first_config(environment, B2A, reason="initial")
        wait_for(lambda: len(slack.received) == 1, timeout=20, message="the in-effect message")
        assert "is in effect" in slack.received[0]["json"]["text"]
        ok.refresh_from_db()
        assert ok.state == "in_effect"
        edge.knobs(kv_faults=[{"method": "PUT", "status": 500}])
        bad = change_config(
            environment,
            CanarySettings(5, "B2a", False),
            kind="rollback",
            reason="lower",
            expected_version=1,
        )
        wait_for(lambda: len(slack.received) == 2, timeout=20, message="the failure message")
        assert "FAILED" in slack.received[1]["json"]["text"]
        assert ConfigChange.objects.get(pk=bad.pk).state == "failed"
