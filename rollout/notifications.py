"""What the rollout app announces, and in which words. Delivery is monitoring.notify's job."""

from django.conf import settings
from django.urls import reverse

from integrations import slack
from monitoring import notify
from monitoring.models import Notification

from .models import ConfigChange


def announce_change_outcome(change: ConfigChange):
    """Post to #deployments when a change reaches "in effect" or fails."""
    environment = change.environment
    target = change.settings
    link = settings.SITE_URL + reverse("rollout:environment", args=[environment.public_id])
    if change.state == ConfigChange.State.IN_EFFECT:
        seconds = change.time_to_effect.total_seconds()
        text = (
            f":white_check_mark: *{environment}*: {target.describe()} is in effect "
            f"({change.get_kind_display()}, {seconds:.0f}s after the request)"
        )
    elif change.state == ConfigChange.State.FAILED:
        text = (
            f":x: *{environment}*: {change.get_kind_display()} to {target.describe()} "
            f"FAILED: {change.last_error}"
        )
    else:
        return None
    payload = slack.message(
        text,
        fields=[
            ("Requested by", change.actor_label),
            ("Reason", change.reason[:300]),
            ("Version", str(change.version)),
        ],
        link=("Open the environment", link),
    )
    return notify.queue(
        channel=Notification.Channel.SLACK_DEPLOYMENTS,
        subject=text[:200],
        payload=payload,
        related_object=f"config-change:{change.public_id}:{change.state}",
    )
