"""Acting from Slack: the local Slack (tests/support/slack.py) and Django configured for it."""

from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from metrics.models import LogSource
from outbox.models import Notification
from rollout.models import CheckIn, Phase, PhaseRun, Rollout
from rollout.services import controls, phases
from tests.metrics.test_notifications import fire_critical
from tests.support.rollouts import plan_for
from tests.support.slack import BOT_TOKEN, SIGNING_SECRET, SlackStandIn
from tests.support.webhooks import WebhookReceiver


@pytest.fixture
def slack(settings):
    """The local Slack, with Django's Slack app settings pointing at it."""
    with SlackStandIn() as stand_in:
        settings.SLACK_BOT_TOKEN = BOT_TOKEN
        settings.SLACK_SIGNING_SECRET = SIGNING_SECRET
        settings.SLACK_API_BASE_URL = stand_in.api_url
        settings.SLACK_RESPONSE_URL_PREFIX = stand_in.response_url_prefix
        yield stand_in


def slack_worker_env(slack) -> dict:
    """A worker's environment for the same local Slack."""
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_BASE_URL": slack.api_url,
        "SLACK_RESPONSE_URL_PREFIX": slack.response_url_prefix,
    }


@pytest.fixture
def http():
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture(autouse=True)
def webhooks(settings):
    """Both channels configured, so the announcements with their buttons are recorded."""
    with WebhookReceiver() as receiver:
        settings.SLACK_DEPLOYMENTS_WEBHOOK_URL = receiver.url
        settings.SLACK_INCIDENTS_WEBHOOK_URL = receiver.url
        yield receiver


def increase_message(percent_request) -> dict:
    """The #deployments message announcing ``percent_request``, as it was queued."""
    return Notification.objects.get(
        related_object=f"percent-request:{percent_request.public_id}:pending"
    ).payload


def stop_message(settings, environment) -> dict:
    """The #incidents message of the critical alert firing on ``environment``."""
    settings.METRICS_ALERT_SETTLE_MINUTES = 0
    LogSource.objects.create(environment=environment, kind="directory", directory="/nonexistent")
    fire_critical(environment)
    return Notification.objects.get(
        channel=Notification.Channel.SLACK_INCIDENTS, subject__contains="native-5xx-critical"
    ).payload


def due_check_in(environment) -> CheckIn:
    """The T+2 h check-in of a B2a window that took effect three hours ago: due now."""
    plan = plan_for(environment)
    rollout = Rollout.objects.create(
        plan=plan, environment=environment, build="build-7", state=Rollout.State.OBSERVING
    )
    in_effect = timezone.now() - timedelta(hours=3)
    run = PhaseRun.objects.create(
        rollout=rollout,
        phase=Phase.objects.get(plan=plan, tag="B2a"),
        state=PhaseRun.State.WAITING,
        started_at=in_effect,
    )
    phases.begin_window(rollout, run, in_effect_at=in_effect, now=in_effect)
    return run.check_ins.get(label="T+2 h")


def raise_to_b2b(environment, person):
    """``person`` asks to raise production from 10 % B2a (version 1) to 25 % B2b."""
    return controls.submit_percent(
        environment=environment,
        percent=25,
        tag="B2b",
        reason="B2b after a quiet day",
        expected_version=1,
        actor=person,
    )
