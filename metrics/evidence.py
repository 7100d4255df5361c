"""What the metrics tell a decision's evidence: the figures of a phase window, the critical
alerts that fired in it and how far its logs have arrived.

Rollout builds the evidence (``rollout/services/evidence.py``) but sits below metrics and never
imports it; ``MetricsConfig.ready()`` hands it this module as its measurements.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Max, Sum
from django.utils.translation import gettext_noop

from rollout.services.preview_words import record, said
from rollout.services.recommendation import Incident

from .figures import Figures, combined, load_minutes, split
from .models import AlertEvent, AlertRule, AlertState, LogSource, MinuteBucket, WorkerMinute


def window(
    environment_id: int, start: datetime, end: datetime, step: timedelta
) -> tuple[Figures, list[Figures], list[datetime]]:
    """The figures over [start, end), the same cut into steps, and the minutes with any log."""
    cells, workers = load_minutes(environment_id, start, end)
    steps = split(cells, workers, start, end, step)
    return combined(steps, start, end), steps, sorted(cells)


def critical_alerts(environment_id: int, start: datetime, end: datetime) -> list[Incident]:
    """Critical alert rules that fired in [start, end)."""
    events = AlertEvent.objects.filter(
        environment_id=environment_id,
        new_state=AlertState.State.FIRING,
        alert__rule__severity=AlertRule.Severity.CRITICAL,
        minute__gte=start,
        minute__lt=end,
    ).select_related("alert__rule")
    return [_critical(event) for event in events.order_by("minute", "id")]


def _critical(event: AlertEvent) -> Incident:
    rule = event.alert.rule
    summary = said(
        gettext_noop("critical alert %(rule)s: %(condition)s"),
        rule=rule.name,
        condition=rule.condition_said(),
    )
    # Frozen in the evidence: its summary in English whoever builds it, and its message and
    # facts, which a page says in its reader's language.
    return Incident(kind="critical_alert", at=event.minute, summary=record(summary), said=summary)


def newest_log_at(environment_id: int) -> datetime | None:
    """The newest log line ingested for the environment."""
    return (
        LogSource.objects.filter(environment_id=environment_id)
        .values_list("newest_log_at", flat=True)
        .first()
    )


def fingerprint(environment_id: int, start: datetime, end: datetime) -> list:
    """A handful of aggregates that move whenever a bucket, an upload error or an alert event in
    the window is added or re-folded."""
    window = {"environment_id": environment_id, "minute__gte": start, "minute__lt": end}
    buckets = MinuteBucket.objects.filter(**window).aggregate(
        rows=Count("id"),
        requests=Sum("requests"),
        errors=Sum("errors_5xx"),
        newest=Max("updated_at"),
    )
    workers = WorkerMinute.objects.filter(**window).aggregate(
        rows=Count("id"), errors=Sum("upload_errors")
    )
    alerts = AlertEvent.objects.filter(environment_id=environment_id).aggregate(newest=Max("id"))
    return [buckets, workers, alerts]
