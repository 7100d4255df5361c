"""Broker faults with real processes: Redis stopped while people click, Redis restarted while a
worker is mid-write. Each case reports "requested / applied exactly once / lost / duplicated"
(tests/support/fault_figures.py)."""

import json
import time

import pytest
from django.urls import reverse

from integrations.kv_value import CanarySettings
from rollout.models import ConfigChange, DesiredConfig
from rollout.tasks import sweep_unapplied_changes
from tests.conftest import NAMESPACES, htmx_client_for, make_environment, wait_for
from tests.support.changes import first_config
from tests.support.fault_figures import change_figures, recorded_changes, report

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def supervised(worker, start_worker):
    """Celery's worker may exit with "Unrecoverable error" when Redis vanishes while it restores
    unacknowledged messages (a known kombu behaviour); in production its supervisor restarts it
    (docker-compose: restart: unless-stopped). Returns a check that plays that supervisor."""
    restarts = []

    def check():
        current = restarts[-1] if restarts else worker
        if current.process.poll() is not None:
            restarts.append(start_worker(name=f"restarted{len(restarts)}"))
        return restarts

    return check


def test_clicks_while_redis_is_down_are_recorded_and_applied(
    edge, redis_server, start_worker, release_manager
):
    environment = make_environment(edge)
    initial = first_config(environment, CanarySettings(10, "B2a", False), reason="initial")
    supervise = supervised(start_worker(), start_worker)
    wait_for(lambda: ConfigChange.objects.get(pk=initial.pk).state == "in_effect", timeout=20)

    redis_server.stop()
    client = htmx_client_for(release_manager)
    started = time.monotonic()
    for version, percent in enumerate((8, 6, 4, 2, 1), start=1):
        response = client.post(
            reverse("rollout:set_percent", args=[environment.public_id]),
            {
                "canary_percent": percent,
                "canary_tag": "B2a",
                "reason": f"step down {percent}",
                "expected_version": version,
                "confirmed": "true",
            },
        )
        assert response.status_code == 200, response.content
    assert time.monotonic() - started < 15, "the page must answer while Redis is down"
    assert DesiredConfig.objects.get(environment=environment).version == 6

    redis_server.start()
    newest = ConfigChange.objects.get(environment=environment, version=6)

    def settled():
        supervise()
        sweep_unapplied_changes.delay()
        return ConfigChange.objects.get(pk=newest.pk).state == "in_effect"

    wait_for(settled, timeout=60, interval=1, message="the newest change to go into effect")
    figures = change_figures(
        edge,
        environment.kv_namespace_id,
        recorded_changes(environment, after_version=initial.version),
        requested=5,
    )
    report("Redis stopped while people click", figures)
    assert figures == {
        "requested": 5,
        "recorded": 5,
        "applied exactly once": 1,
        "superseded": 4,
        "lost": 0,
        "duplicated writes": 0,
    }
    assert ConfigChange.objects.get(pk=newest.pk).state == "in_effect"
    assert json.loads(edge.kv_value(NAMESPACES["production"]))["canary_percent"] == 1


def test_redis_restarted_while_a_worker_writes(edge, redis_server, start_worker):
    environment = make_environment(edge)
    worker = start_worker(env={"HTTP_TIMEOUT_SECONDS": 3, "KV_WRITE_LEASE_SECONDS": 9})
    edge.knobs(kv_faults=[{"method": "PUT", "hang": 1.5}])
    change = first_config(environment, CanarySettings(10, "B2a", False), reason="initial")
    wait_for(lambda: edge.requests("PUT"), timeout=20, message="the PUT to arrive")
    redis_server.stop()
    redis_server.start()  # an empty Redis: the task's message and any retry are gone

    def settled():
        sweep_unapplied_changes.delay()
        return ConfigChange.objects.get(pk=change.pk).state == "in_effect"

    supervise = supervised(worker, start_worker)

    def settled_under_supervision():
        return supervise() is not None and settled()

    wait_for(settled_under_supervision, timeout=60, interval=1, message="the change in effect")
    figures = change_figures(
        edge, environment.kv_namespace_id, recorded_changes(environment), requested=1
    )
    report("Redis restarted while a worker writes", figures)
    assert figures["recorded"] == 1 and figures["applied exactly once"] == 1
    assert figures["lost"] == 0 and figures["duplicated writes"] == 0
    assert json.loads(edge.kv_value(NAMESPACES["production"]))["canary_percent"] == 10
