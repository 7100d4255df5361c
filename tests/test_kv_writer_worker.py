"""The KV writer end to end: web-side service → Redis → a real Celery worker process → the
Cloudflare KV API and /api/qa of the edge stand-in, on PostgreSQL. The fault cases (a worker
killed mid-write, two workers racing, an emergency stop during a retry) report "requested /
applied exactly once / lost / duplicated" (tests/support/fault_figures.py)."""

import json
import time

import pytest

from integrations.kv_value import CanarySettings, read_settings
from rollout import services
from rollout.models import AuditEntry, ConfigChange
from rollout.tasks import sweep_unapplied_changes
from tests.conftest import NAMESPACES, make_environment, wait_for
from tests.support.fault_figures import change_figures, recorded_changes, report
from tests.test_faults_broker import supervised

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

B2A = CanarySettings(10, "B2a", False)
B2B = CanarySettings(25, "B2b", False)
EMERGENCY = CanarySettings(0, "B2a", True)


def state_of(change, *states, timeout=20):
    def settled():
        change.refresh_from_db()
        return change.state in states

    wait_for(settled, timeout=timeout, message=f"{change} to reach {states}")
    return change


def successful_puts(edge):
    return [
        json.loads(r["body"])
        for r in edge.requests()
        if r["method"] == "PUT" and r["status"] == 200
    ]


@pytest.fixture
def production(edge):
    return make_environment(edge)


def test_a_change_goes_into_effect_through_the_worker(edge, production, worker):
    initial = services.create_initial_config(
        environment=production, settings=B2A, reason="initial", system="test"
    )
    state_of(initial, "in_effect")
    change = services.request_change(
        environment=production,
        settings=B2B,
        kind="percent_change",
        reason="phase B2b",
        expected_version=1,
        system="test",
    )
    state_of(change, "in_effect")
    assert json.loads(edge.kv_value(NAMESPACES["production"]))["canary_percent"] == 25
    assert change.time_to_effect.total_seconds() < 10
    production.refresh_from_db()
    assert production.last_edge_report["canary"]["percent"] == 25


def test_429_then_200_through_the_worker(edge, production, worker):
    edge.knobs(kv_faults=[{"method": "PUT", "status": 429, "retry_after": 1}])
    change = services.create_initial_config(
        environment=production, settings=B2A, reason="initial", system="test"
    )
    state_of(change, "in_effect")
    assert change.attempts == 2
    assert len(successful_puts(edge)) == 1


def test_a_change_made_while_the_broker_is_down_is_applied_by_the_sweep(
    edge, production, redis_server, start_worker
):
    worker = start_worker()
    redis_server.stop()
    started = time.monotonic()
    change = services.create_initial_config(
        environment=production, settings=B2A, reason="made during a Redis outage", system="test"
    )
    assert time.monotonic() - started < 5, "the web side must not hang on a dead broker"
    change.refresh_from_db()
    assert change.state == "requested"
    redis_server.start()
    supervise = supervised(worker, start_worker)

    def settled():
        supervise()
        sweep_unapplied_changes.delay()
        change.refresh_from_db()
        return change.state == "in_effect"

    wait_for(settled, timeout=60, interval=1, message="the change to go into effect")
    assert len(successful_puts(edge)) == 1


def test_a_worker_killed_mid_write_ends_in_exactly_one_applied_state(
    edge, production, start_worker
):
    # The first worker's PUT hangs for 1.5 s; it is killed while waiting for the answer.
    doomed = start_worker(
        pool="solo", name="doomed", env={"HTTP_TIMEOUT_SECONDS": 2, "KV_WRITE_LEASE_SECONDS": 6}
    )
    edge.knobs(kv_faults=[{"method": "PUT", "hang": 1.5}])
    change = services.create_initial_config(
        environment=production, settings=B2A, reason="initial", system="test"
    )
    state_of(change, "applying")
    wait_for(lambda: edge.requests("PUT"), message="the PUT to arrive")
    doomed.kill()
    change.refresh_from_db()
    assert change.state == "applying"

    start_worker(name="rescuer")
    sweep_unapplied_changes.delay()
    state_of(change, "in_effect", timeout=30)

    def audited(action):
        return AuditEntry.objects.filter(action=action, object_id=str(change.public_id)).count()

    # The in-effect entry is written just after the state flips: wait for it, then count.
    wait_for(lambda: audited("config.in_effect"), message="the in-effect audit entry")
    time.sleep(0.5)
    figures = change_figures(
        edge, production.kv_namespace_id, recorded_changes(production), requested=1
    )
    report("Worker killed (SIGKILL) during a KV write", figures)
    assert figures["recorded"] == 1 and figures["applied exactly once"] == 1
    assert figures["lost"] == 0 and figures["duplicated writes"] == 0
    assert audited("config.written") == 1
    assert audited("config.in_effect") == 1
    assert json.loads(edge.kv_value(NAMESPACES["production"]))["canary_percent"] == 10
    assert ConfigChange.objects.filter(environment=production).count() == 1


def test_an_emergency_stop_wins_over_an_increase_still_retrying(edge, production, worker):
    initial = services.create_initial_config(
        environment=production, settings=B2A, reason="initial", system="test"
    )
    state_of(initial, "in_effect")
    edge.knobs(kv_faults=[{"method": "PUT", "status": 429, "retry_after": 2}])
    increase = services.request_change(
        environment=production,
        settings=B2B,
        kind="percent_change",
        reason="phase B2b",
        expected_version=1,
        system="test",
    )
    wait_for(lambda: ConfigChange.objects.get(pk=increase.pk).attempts >= 1, message="a try")
    stop = services.request_change(
        environment=production,
        settings=EMERGENCY,
        kind="emergency_stop",
        reason="5xx spike",
        expected_version=None,
        system="test",
    )
    state_of(stop, "in_effect")
    time.sleep(3)  # past the increase's retry time: its message is delivered and must do nothing
    figures = change_figures(
        edge,
        production.kv_namespace_id,
        recorded_changes(production, after_version=initial.version),
        requested=2,
    )
    figures["KV ended in"] = read_settings(edge.kv_value(NAMESPACES["production"])).describe()
    report("Emergency stop while a percent increase is retrying", figures)
    assert figures["recorded"] == 2 and figures["applied exactly once"] == 1
    assert figures["superseded"] == 1
    assert figures["lost"] == 0 and figures["duplicated writes"] == 0
    assert figures["KV ended in"].startswith("EMERGENCY")
    increase.refresh_from_db()
    assert increase.state == "superseded"
    assert json.loads(edge.kv_value(NAMESPACES["production"]))["emergency_proxy"] is True
    assert [value["canary_percent"] for value in successful_puts(edge)] == [10, 0]


def test_two_workers_racing_on_one_environment_write_once(edge, production, start_worker):
    start_worker(name="a", pool="threads", concurrency=2)
    start_worker(name="b", pool="threads", concurrency=2)
    edge.knobs(kv_faults=[{"method": "GET", "hang": 0.3}])  # widen the window for a race
    change = services.create_initial_config(
        environment=production, settings=B2A, reason="initial", system="test"
    )
    from rollout.tasks import apply_desired_config

    tasks_sent = 6
    for _ in range(tasks_sent):
        apply_desired_config.delay(production.pk)
    state_of(change, "in_effect")
    time.sleep(1)
    figures = change_figures(
        edge, production.kv_namespace_id, recorded_changes(production), requested=1
    )
    figures["extra apply tasks sent"] = tasks_sent
    report("Two workers racing on one environment", figures)
    assert figures["recorded"] == 1 and figures["applied exactly once"] == 1
    assert figures["lost"] == 0 and figures["duplicated writes"] == 0
    assert len(successful_puts(edge)) == 1
