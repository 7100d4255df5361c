"""Queueing and sending notifications. Callers build the message (one module per concern:
see docs/architecture.md); this module records and delivers it."""

import logging
import random
from functools import partial

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction

from integrations import pagerduty, slack

from .models import Notification

log = logging.getLogger(__name__)

WEBHOOK_SETTINGS = {
    Notification.Channel.SLACK_DEPLOYMENTS: "SLACK_DEPLOYMENTS_WEBHOOK_URL",
    Notification.Channel.SLACK_INCIDENTS: "SLACK_INCIDENTS_WEBHOOK_URL",
    # Not a webhook: the routing key of the PagerDuty service (a secret, added at send time).
    Notification.Channel.PAGERDUTY: "PAGERDUTY_ROUTING_KEY",
}
# A resolve waiting for an earlier trigger of its incident to be delivered checks again after this.
RESOLVE_WAIT_SECONDS = 2.0


def channel_configured(channel: str) -> bool:
    return bool(getattr(settings, WEBHOOK_SETTINGS[channel]))


def with_slack_buttons(payload: dict, buttons: list[dict]) -> dict:
    """``payload`` with ``buttons`` when the Slack app that answers them is configured (bot
    token and signing secret); otherwise the message as it is, with its links only."""
    if not (settings.SLACK_BOT_TOKEN and settings.SLACK_SIGNING_SECRET):
        return payload
    return slack.with_buttons(payload, buttons)


def queue(
    *,
    channel: str,
    subject: str,
    payload: dict,
    related_object: str = "",
    dedup_key: str = "",
    event_action: str = "",
):
    """Record a notification and send it after commit. Returns None when the channel has no
    webhook configured (nothing is sent) or the event was already announced.

    For PagerDuty ``payload`` is the Events API v2 event without its routing key."""
    if not channel_configured(channel):
        return None
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                channel=channel,
                subject=subject[:200],
                payload=payload,
                related_object=related_object,
                dedup_key=dedup_key,
                event_action=event_action,
            )
    except IntegrityError:
        return None  # already announced
    transaction.on_commit(partial(_enqueue, notification.pk))
    return notification


def _enqueue(notification_id: int):
    from .tasks import send_notification

    try:
        send_notification.delay(notification_id)
    except Exception as exc:  # broker down: the sweep sends it later
        log.warning("could not queue notification %s: %s", notification_id, exc)


def deliver(notification_id: int) -> float | None:
    """Send one queued notification. Returns seconds until it should be tried again, if any."""
    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is not None and _trigger_still_unsent(notification):
        return RESOLVE_WAIT_SECONDS
    if notification is None or not notification.start_attempt(
        lease_seconds=3 * settings.HTTP_TIMEOUT_SECONDS
    ):
        return None
    url = getattr(settings, WEBHOOK_SETTINGS[notification.channel])
    if not url:
        notification.finish(
            sent=False, status=None, answer="webhook no longer configured", retry_in=None
        )
        return None
    with httpx.Client(timeout=settings.HTTP_TIMEOUT_SECONDS) as client:
        if notification.channel == Notification.Channel.PAGERDUTY:
            delivery = pagerduty.send(
                settings.PAGERDUTY_EVENTS_URL, url, notification.payload, client=client
            )
        else:
            delivery = slack.post(url, notification.payload, client=client)
    retry_in = None
    if (
        not delivery.ok
        and delivery.transient
        and notification.attempts < settings.NOTIFY_MAX_ATTEMPTS
    ):
        retry_in = delivery.retry_after or min(60.0, 2**notification.attempts) * random.uniform(
            0.5, 1.0
        )
    notification.finish(
        sent=delivery.ok, status=delivery.status, answer=delivery.answer, retry_in=retry_in
    )
    return retry_in


def _trigger_still_unsent(notification: Notification) -> bool:
    """A PagerDuty resolve must not overtake the trigger it resolves (PagerDuty ignores a
    resolve for an incident it has not seen, and the late trigger would open one for good)."""
    if (
        notification.channel != Notification.Channel.PAGERDUTY
        or notification.event_action != "resolve"
        or notification.state != Notification.State.QUEUED
    ):
        return False
    return Notification.objects.filter(
        channel=Notification.Channel.PAGERDUTY,
        dedup_key=notification.dedup_key,
        event_action="trigger",
        pk__lt=notification.pk,
        state__in=[Notification.State.QUEUED, Notification.State.SENDING],
    ).exists()
