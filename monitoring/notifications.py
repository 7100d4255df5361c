"""What drift announces, and in which words: Slack #incidents. Delivery is outbox.notify's job."""

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations import slack
from outbox import notify
from outbox.models import Notification
from rollout.team_language import speaks_for

from .drift_words import kv_words


def _drift_page(environment) -> str:
    return settings.SITE_URL + reverse("monitoring:environment", args=[environment.public_id])


def _incident(environment, text, *, fields, link_label, related_object):
    return notify.queue(
        channel=Notification.Channel.SLACK_INCIDENTS,
        subject=text,
        payload=slack.message(text, fields=fields, link=(link_label, _drift_page(environment))),
        related_object=related_object,
    )


@speaks_for(lambda environment, **kwargs: environment)
def announce_late_write(environment, *, late, desired, reapplied, kv_hash: str):
    """Our unanswered write landed late in KV, and the desired version was re-applied."""
    return _incident(
        environment,
        _(
            ":warning: *%(environment)s*: our unanswered write of version "
            "%(version)s landed late and put its settings back into Workers KV; "
            "version %(version2)s re-applied"
        )
        % {"environment": environment, "version": late.version, "version2": desired.version},
        fields=[
            (
                _("In KV now"),
                _("%(settings)s (version %(version)s)")
                % {"settings": late.settings.describe(), "version": late.version},
            ),
            (
                _("Re-applied"),
                _("%(settings)s (as version %(version)s)")
                % {"settings": desired.settings.describe(), "version": reapplied.version},
            ),
        ],
        link_label=_("Drift"),
        related_object=f"late-write:{environment.public_id}:{kv_hash[:16]}",
    )


@speaks_for(lambda environment, **kwargs: environment)
def announce_external_change(environment, *, desired, kv: dict, kv_hash: str):
    """Workers KV was changed outside the dashboard (``kv``: what it holds now, as
    ``drift_words.kv_facts`` keeps it)."""
    return _incident(
        environment,
        _(":warning: *%(environment)s*: Workers KV was changed outside the dashboard")
        % {"environment": environment},
        fields=[
            (_("In KV now"), kv_words(kv)),
            (
                _("Desired"),
                _("%(settings)s (version %(version)s)")
                % {"settings": desired.settings.describe(), "version": desired.version},
            ),
        ],
        link_label=_("Adopt or overwrite"),
        related_object=(
            f"drift:{environment.public_id}:{kv_hash[:16]}:{int(timezone.now().timestamp())}"
        ),
    )
