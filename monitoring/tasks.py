from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from rollout.models import DesiredConfig, Environment

from . import drift, notify, probes, retention, sampler
from .models import CohortSample, Notification


@shared_task(bind=True, max_retries=None, acks_late=True)
def send_notification(self, notification_id: int):
    retry_in = notify.deliver(notification_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(acks_late=True)
def sweep_unsent_notifications():
    now = timezone.now()
    # A sender that died mid-send: its lease ran out, so queue the message again.
    Notification.objects.filter(state=Notification.State.SENDING, next_attempt_at__lt=now).update(
        state=Notification.State.QUEUED, next_attempt_at=None
    )
    due = Notification.objects.filter(state=Notification.State.QUEUED).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    for notification_id in due.values_list("pk", flat=True):
        send_notification.delay(notification_id)


# --- Health checks, cohort samples, drift, retention ------------------------------------------
# Each task takes ids and re-reads the database; a bad answer from the network is recorded on a
# row (a failed check, a failed sample, a drift state), never raised out of the schedule.
# (Celery's Django fix-up closes stale database connections around every task.)


def _connected_environment_ids():
    return list(Environment.objects.filter(connected_at__isnull=False).values_list("pk", flat=True))


@shared_task(acks_late=True)
def run_health_checks():
    """Beat: one health check per connected environment."""
    environment_ids = _connected_environment_ids()
    for environment_id in environment_ids:
        health_check.delay(environment_id)
    return environment_ids


@shared_task(acks_late=True)
def health_check(environment_id: int):
    if probes.is_due(environment_id):
        probes.run_health_check(environment_id)


@shared_task(acks_late=True)
def sample_cohorts():
    """Beat: re-queue or give up samples whose worker is gone, then one sample per connected
    environment that has a desired config."""
    sweep_samples()
    with_desired = set(DesiredConfig.objects.values_list("environment_id", flat=True))
    queued = []
    for environment in Environment.objects.filter(
        pk__in=[pk for pk in _connected_environment_ids() if pk in with_desired]
    ):
        sample, created = sampler.queue_sample(environment, trigger=CohortSample.Trigger.SCHEDULE)
        if created:
            queued.append(sample.pk)
    return queued


def sweep_samples(now=None):
    """Samples the database says are unfinished, whatever happened to their messages."""
    now = now or timezone.now()
    longest = settings.COHORT_SAMPLE_MAX_SECONDS + 4 * settings.HTTP_TIMEOUT_SECONDS + 60
    for sample in CohortSample.objects.filter(
        state=CohortSample.State.RUNNING, started_at__lt=now - timedelta(seconds=longest)
    ):
        sample.give_up("abandoned: the worker taking it stopped before it finished")
    stale = CohortSample.objects.filter(
        state=CohortSample.State.QUEUED, created_at__lt=now - timedelta(seconds=30)
    )
    for sample in stale:
        if sample.created_at < now - timedelta(seconds=longest):
            sample.give_up("never started: no worker took it")
        else:
            sampler.enqueue_sample(sample.pk)


@shared_task(acks_late=True)
def run_cohort_sample(sample_id: int):
    sampler.run_sample(sample_id)


@shared_task(acks_late=True)
def check_drift_everywhere():
    """Beat: one drift check per connected environment."""
    environment_ids = _connected_environment_ids()
    for environment_id in environment_ids:
        check_drift.delay(environment_id)
    return environment_ids


@shared_task(acks_late=True)
def check_drift(environment_id: int):
    drift.check_drift(environment_id)


@shared_task(acks_late=True)
def prune_checks():
    return retention.prune()
