"""A service's B2 plan, a production environment at its first phase, and a phase's minute
buckets: the starting point of the tests (and benches) of windows, evidence and sign-off."""

from datetime import timedelta

from django.utils import timezone

from integrations.histogram import Histogram
from metrics.models import MinuteBucket
from rollout.models import DesiredConfig, Phase, PhaseRun, Rollout, RolloutPlan
from rollout.services import phases, signoff
from rollout.services.evidence import build

NOW = timezone.now().replace(second=0, microsecond=0)


def plan_for(environment):
    plan = RolloutPlan.objects.create(service=environment.service, name="B2")
    for position, (tag, percent, hours) in enumerate(
        [("B2a", 10, 24), ("B2b", 25, 48), ("B2c", 100, 24)]
    ):
        Phase.objects.create(
            plan=plan,
            position=position,
            tag=tag,
            percent=percent,
            min_observation=timedelta(hours=hours),
        )
    return plan


def bucket(environment, minute, cohort, histogram: Histogram, *, errors: int) -> MinuteBucket:
    """A cohort's minute as ingestion stores it: one request for each TTFB in ``histogram``."""
    return MinuteBucket(
        environment=environment,
        minute=minute,
        cohort=cohort,
        requests=histogram.total,
        errors_5xx=errors,
        ttfb_histogram=histogram.to_bytes(),
    )


def fill(environment, start, end, *, native=(40, 0, 300.0), proxy=(360, 1, 280.0)):
    """One bucket per minute and cohort: (requests, 5xx, ttfb ms)."""
    minute = start
    rows = []
    while minute < end:
        for cohort, (requests, errors, ttfb) in (("native", native), ("proxy", proxy)):
            histogram = Histogram()
            histogram.add(ttfb, requests)
            rows.append(bucket(environment, minute, cohort, histogram, errors=errors))
        minute += timedelta(minutes=1)
    MinuteBucket.objects.bulk_create(rows)


def make_production_at_b2a(edge):
    """Production with the B2 plan, its desired config at B2a 10% (version 3)."""
    from tests.conftest import make_environment

    environment = make_environment(edge)
    plan_for(environment)
    DesiredConfig.objects.create(
        environment=environment,
        version=3,
        canary_percent=10,
        canary_tag="B2a",
        emergency_proxy=False,
    )
    return environment


def b2b_request(environment, person, *, base_version=3):
    """A raise from B2a 10 % to B2b 25 % asked by ``person``, waiting for a second person."""
    from rollout.models import PercentRequest

    return PercentRequest.objects.create(
        environment=environment,
        requested_by=person,
        reason="B2b",
        base_version=base_version,
        from_percent=10,
        to_percent=25,
        from_tag="B2a",
        to_tag="B2b",
    )


def observing(environment, *, phase_tag="B2a", hours_ago=25, healthy=True, fill_logs=True):
    """A rollout whose phase took effect ``hours_ago`` hours before NOW, with its metrics."""
    rollout = Rollout.objects.create(
        plan=environment.service.plan,
        environment=environment,
        build="build-7",
        state=Rollout.State.OBSERVING,
    )
    phase = Phase.objects.get(plan=rollout.plan, tag=phase_tag)
    in_effect = NOW - timedelta(hours=hours_ago)
    run = PhaseRun.objects.create(
        rollout=rollout,
        phase=phase,
        state=PhaseRun.State.WAITING,
        started_at=in_effect,
    )
    phases.begin_window(rollout, run, in_effect_at=in_effect, now=in_effect)
    if fill_logs:
        native = (40, 0, 300.0) if healthy else (40, 2, 300.0)
        fill(environment, in_effect, min(NOW, run.window_ends_at), native=native)
    run.refresh_from_db()
    return run


def attest_all(run, person):
    for kind in ("upload_flow", "team_agrees"):
        signoff.attest(run=run, kind=kind, value=True, note="checked", person=person, now=NOW)


def sign(run, person, role, outcome="go", justification="", now=NOW, digest=None):
    return signoff.sign(
        run=run,
        outcome=outcome,
        role=role,
        seen_digest=digest or build(run, now).digest,
        justification=justification,
        person=person,
        now=now,
    )
