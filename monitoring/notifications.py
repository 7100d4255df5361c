"""What drift announces, and in which words: Slack #incidents. Delivery is outbox.notify's job."""

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from integrations import slack
from outbox import notify
from outbox.models import Notification


def _drift_page(environment) -> str:
    return settings.SITE_URL + reverse("monitoring:environment", args=[environment.public_id])


def _incident(environment, text, *, fields, link_label, related_object):
    return notify.queue(
        channel=Notification.Channel.SLACK_INCIDENTS,
        subject=text,
        payload=slack.message(text, fields=fields, link=(link_label, _drift_page(environment))),
        related_object=related_object,
    )


def announce_late_write(environment, *, late, desired, reapplied, kv_hash: str):
    """Our unanswered write landed late in KV, and the desired version was re-applied."""
    return _incident(
        environment,
        f":warning: *{environment}*: our unanswered write of version {late.version} landed late "
        f"and put its settings back into Workers KV; version {desired.version} re-applied",
        fields=[
            ("In KV now", f"{late.settings.describe()} (version {late.version})"),
            ("Re-applied", f"{desired.settings.describe()} (as version {reapplied.version})"),
        ],
        link_label="Drift",
        related_object=f"late-write:{environment.public_id}:{kv_hash[:16]}",
    )


def announce_external_change(environment, *, desired, in_kv: str, kv_hash: str):
    """Workers KV was changed outside the dashboard (``in_kv`` says what it holds now)."""
    return _incident(
        environment,
        f":warning: *{environment}*: Workers KV was changed outside the dashboard",
        fields=[
            ("In KV now", in_kv),
            ("Desired", f"{desired.settings.describe()} (version {desired.version})"),
        ],
        link_label="Adopt or overwrite",
        related_object=(
            f"drift:{environment.public_id}:{kv_hash[:16]}:{int(timezone.now().timestamp())}"
        ),
    )
