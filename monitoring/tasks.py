import logging
from datetime import UTC, datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from rollout.models import DesiredConfig, Environment
from rollout.queueing import try_to_queue

from . import observation, retention, sampler
from .models import CohortSample

log = logging.getLogger(__name__)

# --- Observation, cohort samples, retention ----------------------------------------------------
# Each task takes ids and re-reads the database; a bad answer from the network is recorded on a
# row (a failed check, a failed sample, a drift state), never raised out of the schedule.
# (Celery's Django fix-up closes stale database connections around every task.)


def _connected_environment_ids():
    return list(Environment.objects.filter(connected_at__isnull=False).values_list("pk", flat=True))


@shared_task(acks_late=True)
def observe_environments():
    """Beat: one observation per connected environment, for the interval starting now."""
    environment_ids = _connected_environment_ids()
    sent_at = timezone.now().timestamp()
    for environment_id in environment_ids:
        observe_environment.delay(environment_id, sent_at=sent_at)
    return environment_ids


@shared_task(acks_late=True)
def observe_environment(environment_id: int, force: bool = False, sent_at: float | None = None):
    """Read KV and the edge once and record it, once for the interval beat sent it for
    (``sent_at``): a doubled message, or one taken again after its worker died or restored after
    a restart, does nothing (``observation.claim``); a forced one (a look right after a write,
    for a late write of ours) always runs."""
    sent = datetime.fromtimestamp(sent_at, tz=UTC) if sent_at is not None else None
    if force or observation.claim(environment_id, sent_at=sent):
        observation.observe(environment_id)


def queue_observation(sender, *, environment_id: int, delay: float, **kwargs) -> None:
    """Receiver of ``rollout.signals.observation_wanted`` (connected in MonitoringConfig.ready):
    a forced observation after ``delay`` seconds. A broker outage is logged, not raised: the
    beat's observation comes anyway."""
    try_to_queue(
        observe_environment,
        environment_id,
        what=f"an observation of environment {environment_id}",
        kwargs={"force": True},
        countdown=delay,
    )


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
def prune_checks():
    return retention.prune()
