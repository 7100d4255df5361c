"""One observation per environment: one beat entry reads KV once and the edge once, with the
environment's probe headers, and the overview, the drift view and the health checks history all
show what it recorded. Against the edge stand-in over HTTP."""

import threading
import time

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.urls import reverse

from integrations.kv_value import CanarySettings
from monitoring import sampler, tasks
from monitoring.models import CohortSample, DriftState, HealthCheck
from monitoring.observation import observe
from rollout import kv_writer
from tests.conftest import client_for, make_environment
from tests.monitoring.conftest import settle_writes, write_plan
from tests.support.changes import first_config

# Every task that ever read KV or /api/qa on a schedule.
SCHEDULED_READERS = {
    "monitoring.tasks.observe_environments",
    "monitoring.tasks.run_health_checks",
    "monitoring.tasks.check_drift_everywhere",
    "rollout.tasks.observe_environments",
}
TOKEN = "monitoring-secret-7f3a"


def test_one_beat_entry_reads_kv_and_the_edge_once_per_environment(db):
    readers = [
        name
        for name, entry in django_settings.CELERY_BEAT_SCHEDULE.items()
        if entry["task"] in SCHEDULED_READERS
    ]
    assert readers == ["monitoring-observe"]
    entry = django_settings.CELERY_BEAT_SCHEDULE["monitoring-observe"]
    assert entry["task"] == "monitoring.tasks.observe_environments"


@pytest.mark.django_db
def test_one_run_reads_each_environment_once_and_every_page_shows_it(edge, planned, viewer):
    preview = make_environment(edge, name="preview")
    write_plan(preview)
    kv_calls, edge_calls = len(edge.requests()), len(edge.edge_requests())

    environment_ids = tasks.observe_environments()  # what beat sends
    for environment_id in environment_ids:
        tasks.observe_environment(environment_id)  # what a worker then runs

    assert sorted(environment_ids) == sorted([planned.pk, preview.pk])
    for environment in (planned, preview):
        namespace = edge.namespace_id(environment.name)
        kv_reads = [r for r in edge.requests("GET", since=kv_calls) if namespace in r["path"]]
        assert len(kv_reads) == 1
        edge_reads = edge.edge_requests(environment.name, since=edge_calls)
        assert [r["path"] for r in edge_reads] == ["/api/qa"]

    planned.refresh_from_db()
    check = HealthCheck.objects.get(environment=planned)
    state = DriftState.objects.get(environment=planned)
    assert check.verdict == "ok" and check.canary["percent"] == 10
    assert state.kv_state == "in_sync" and state.edge_state == "in_sync"
    assert planned.last_edge_report["canary"]["percent"] == 10
    assert '"canary_percent":10' in planned.last_kv_raw

    client = client_for(viewer)
    overview = client.get(reverse("rollout:overview")).content.decode()
    assert "&quot;canary_percent&quot;:10" in overview and "probed" in overview
    drift = client.get(reverse("monitoring:drift", args=[planned.public_id])).content.decode()
    assert "Not checked yet" not in drift and "&quot;canary_percent&quot;:10" in drift
    history = client.get(reverse("monitoring:checks", args=[planned.public_id])).content.decode()
    assert "1 check;" in history and "healthy" in history


@pytest.mark.django_db(transaction=True)
def test_every_request_to_the_edge_carries_the_environments_probe_headers(edge, settings):
    settings.EDGE_PROBE_HEADERS = {"X-Probe-Source": "rollout-control"}
    settings.EDGE_PROBE_HEADERS_BY_ENVIRONMENT = {
        "pix-immo-api/production": {"X-Monitoring-Token": TOKEN}
    }
    settings.COHORT_SAMPLE_SIZE = 5
    production = make_environment(edge)
    first_config(production, CanarySettings(10, "B2a", False), reason="initial")
    outcome = settle_writes(production)
    kv_writer.confirm(outcome.confirm_change_id)  # the "in effect" confirmation
    observe(production.pk)  # the scheduled observation
    sample, _ = sampler.queue_sample(production, trigger=CohortSample.Trigger.MANUAL)
    sampler.run_sample(sample.pk)  # the cohort sampler

    sent = edge.edge_requests("production")
    assert len(sent) >= 1 + 1 + 5
    assert all(r["headers"].get("x-monitoring-token") == TOKEN for r in sent), sent
    assert all(r["headers"].get("x-probe-source") == "rollout-control" for r in sent)


@pytest.mark.django_db(transaction=True)
def test_a_sample_beside_the_observations_never_makes_one_see_a_429(
    edge, planned, settings, broker_url
):
    # The edge admits 6 requests per client per second; our budget is 6 per 1.3 s (a margin
    # for the way there), 2 of them reserved for the observation.
    edge.knobs(rate_limit=6, rate_window=1.0)
    settings.EDGE_REQUEST_BUDGET = 6
    settings.EDGE_REQUEST_BUDGET_WINDOW_SECONDS = 1.3
    settings.EDGE_REQUEST_BUDGET_RESERVED = 2
    settings.EDGE_BUDGET_REDIS_URL = broker_url
    settings.COHORT_SAMPLE_SIZE = 20
    settings.COHORT_SAMPLE_MAX_SECONDS = 30
    sample, _ = sampler.queue_sample(planned, trigger=CohortSample.Trigger.MANUAL)

    def take_sample():
        try:
            sampler.run_sample(sample.pk)
        finally:
            connection.close()

    sampling = threading.Thread(target=take_sample)
    sampling.start()
    observations = 0
    while sampling.is_alive() or observations < 3:
        observe(planned.pk)
        observations += 1
        time.sleep(0.4)  # the beat's interval, shortened
    sampling.join()

    sample.refresh_from_db()
    assert sample.state == "done" and sample.native + sample.proxy == 20, sample.verdict_reason
    checks = HealthCheck.objects.filter(environment=planned)
    assert checks.count() == observations >= 3
    assert [c.reason for c in checks.exclude(verdict="ok")] == []
    assert sample.rate_limited == 0
    assert edge.state()["counters"]["edge"]["production"]["rate_limited"] == 0
