"""Celery tasks. Each takes ids, re-reads the database and is safe to run twice or at once."""

from celery import shared_task
from django.db import close_old_connections

from . import alerts, ingest
from .models import LogSource


@shared_task(acks_late=True)
def ingest_all_logs():
    """Beat, every few seconds: a look for new objects per enabled log source."""
    for source_id in LogSource.objects.filter(enabled=True).values_list("pk", flat=True):
        ingest_logs.delay(source_id)


@shared_task(acks_late=True)
def ingest_logs(source_id: int):
    """List, read and fold the source's new objects; judge its alerts at once when something
    came in (here, not through the broker: a landed file should fire a rule in seconds).

    A source that cannot be read is recorded on its row; the next beat run tries again."""
    close_old_connections()
    report = ingest.ingest_source(source_id)
    if report.counted:
        environment_id = (
            LogSource.objects.filter(pk=source_id).values_list("environment_id", flat=True).first()
        )
        if environment_id:
            alerts.evaluate_environment(environment_id)
    return {
        "counted": report.counted,
        "already": report.already,
        "lines": report.lines,
        "bad_lines": report.bad_lines,
        "errors": report.errors,
    }


@shared_task(acks_late=True)
def evaluate_all_alerts():
    """Beat, every minute: the "logs not delivering" rule needs the clock to move (the others
    are judged after each ingestion that adds data)."""
    for environment_id in LogSource.objects.filter(enabled=True).values_list(
        "environment_id", flat=True
    ):
        evaluate_alerts.delay(environment_id)


@shared_task(acks_late=True)
def evaluate_alerts(environment_id: int):
    close_old_connections()
    events = alerts.evaluate_environment(environment_id)
    return [f"{event.alert.rule.name}: {event.old_state} → {event.new_state}" for event in events]
