"""What metrics tells the overview needs a person: an alert rule firing. Handed to rollout's
overview as a source (``rollout.services.attention.look_with``) by ``MetricsConfig.ready()``."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.urls import reverse
from django.utils.translation import gettext as _

from rollout.models import Environment
from rollout.services.attention import Attention

from .models import AlertState


def needs(environments: list[Environment], now: datetime) -> dict[int, list[Attention]]:
    """One query for all the environments: their firing alerts."""
    found: dict[int, list[Attention]] = defaultdict(list)
    by_id = {environment.pk: environment for environment in environments}
    firing = AlertState.objects.filter(
        environment_id__in=by_id, state=AlertState.State.FIRING
    ).select_related("rule")
    for alert in firing.order_by("rule__name"):
        environment = by_id[alert.environment_id]
        found[alert.environment_id].append(
            Attention(
                kind="alert",
                text=_("Alert firing: %(name)s (%(rule)s)")
                % {"name": alert.rule.name, "rule": alert.rule.describe()},
                url=reverse("metrics:environment", args=[environment.public_id]),
                level="error",
                since=alert.since,
            )
        )
    return found
