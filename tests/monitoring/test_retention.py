"""Pruning old raw checks and samples into per-hour summaries."""

from datetime import UTC, datetime, timedelta

import pytest

from monitoring import tasks
from monitoring.models import CohortSample, HealthCheck, HourlySummary
from monitoring.retention import prune

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)  # the day Berlin moves its clocks


def check(environment, at, verdict="ok", latency=10.0, reason="healthy"):
    return HealthCheck.objects.create(
        environment=environment,
        checked_at=at,
        verdict=verdict,
        reason=reason,
        url=environment.qa_url,
        latency_ms=latency,
    )


def sample(environment, at, native, proxy, verdict="pass", rate_limited=0):
    return CohortSample.objects.create(
        environment=environment,
        trigger="schedule",
        state="done",
        created_at=at,
        size=native + proxy,
        concurrency=8,
        native=native,
        proxy=proxy,
        rate_limited=rate_limited,
        verdict=verdict,
    )


def test_old_checks_become_hourly_summaries(production, settings):
    settings.CHECK_RETENTION_DAYS = 7
    old = NOW - timedelta(days=8)
    hour = old.replace(minute=0)
    # Three checks in one old hour (UTC), one in the next, one recent one that stays.
    check(production, hour + timedelta(minutes=1), latency=10)
    check(production, hour + timedelta(minutes=2), latency=30)
    check(production, hour + timedelta(minutes=59), "failed", None, "timed out")
    check(production, hour + timedelta(hours=1, minutes=5), "failed", 50, "HTTP 503")
    recent = check(production, NOW - timedelta(hours=1))
    sample(production, hour + timedelta(minutes=3), 9, 91)
    sample(production, hour + timedelta(minutes=8), 30, 70, "fail", rate_limited=12)
    CohortSample.objects.create(  # still running: never pruned under its worker
        environment=production, trigger="manual", state="running", created_at=old, size=100,
        concurrency=8,
    )  # fmt: skip

    assert prune(now=NOW) == {"checks": 4, "samples": 2, "before": (NOW - timedelta(7)).isoformat()}
    assert list(HealthCheck.objects.values_list("pk", flat=True)) == [recent.pk]
    assert CohortSample.objects.filter(state="running").count() == 1

    first, second = HourlySummary.objects.filter(environment=production).order_by("hour")
    assert first.hour == hour and second.hour == hour + timedelta(hours=1)
    assert (first.checks, first.checks_failed) == (3, 1)
    assert first.latency_count == 2 and first.latency_avg_ms == 20 and first.latency_max_ms == 30
    assert first.failure_reasons == {"timed out": 1}
    assert (first.samples, first.samples_failed) == (2, 1)
    assert (first.sample_native, first.sample_proxy, first.sample_rate_limited) == (39, 161, 12)
    assert (second.checks, second.checks_failed, second.samples) == (1, 1, 0)


def test_pruning_again_counts_nothing_twice(production, settings):
    settings.CHECK_RETENTION_DAYS = 1
    hour = (NOW - timedelta(days=2)).replace(minute=0)
    check(production, hour + timedelta(minutes=1), "failed", 5, "HTTP 503")
    prune(now=NOW)
    assert prune(now=NOW)["checks"] == 0
    # A late row for an hour already summarised adds to it.
    check(production, hour + timedelta(minutes=30), "failed", 15, "HTTP 503")
    prune(now=NOW)
    summary = HourlySummary.objects.get()
    assert (summary.checks, summary.checks_failed, summary.latency_sum_ms) == (2, 2, 20)
    assert summary.failure_reasons == {"HTTP 503": 2}


def test_the_task_prunes(production, settings):
    settings.CHECK_RETENTION_DAYS = 0.5
    check(production, datetime.now(UTC) - timedelta(days=1))
    assert tasks.prune_checks()["checks"] == 1
    assert HourlySummary.objects.get().checks == 1
