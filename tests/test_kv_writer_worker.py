"""The KV writer end to end: web-side service → Redis → a real Celery worker process → the
Cloudflare KV API and /api/qa of the edge stand-in, on PostgreSQL. The fault cases (a worker
killed mid-write, two workers racing, an emergency stop during a retry) report "requested /
applied exactly once / lost / duplicated" (tests/support/fault_figures.py)."""

import json
import os
import signal
import time

import pytest

from integrations.kv_value import CanarySettings, read_settings
from monitoring.observation import observe
from rollout.models import AuditEntry, ConfigChange, Environment
from rollout.services import controls
from rollout.tasks import sweep_unapplied_changes
from tests.conftest import NAMESPACES, wait_for
from tests.support.changes import change_config, first_config
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


def lease_token(environment):
    return Environment.objects.values_list("kv_lease_token", flat=True).get(pk=environment.pk)


def test_a_change_goes_into_effect_through_the_worker(edge, production, worker):
    initial = first_config(production, B2A, reason="initial")
    state_of(initial, "in_effect")
    change = change_config(production, B2B, reason="phase B2b", expected_version=1)
    state_of(change, "in_effect")
    assert json.loads(edge.kv_value(NAMESPACES["production"]))["canary_percent"] == 25
    assert change.time_to_effect.total_seconds() < 10
    production.refresh_from_db()
    assert production.last_edge_report["canary"]["percent"] == 25


def test_429_then_200_through_the_worker(edge, production, worker):
    edge.knobs(kv_faults=[{"method": "PUT", "status": 429, "retry_after": 1}])
    change = first_config(production, B2A, reason="initial")
    state_of(change, "in_effect")
    assert change.attempts == 2
    assert len(successful_puts(edge)) == 1


def test_a_change_made_while_the_broker_is_down_is_applied_by_the_sweep(
    edge, production, redis_server, start_worker
):
    worker = start_worker()
    redis_server.stop()
    started = time.monotonic()
    change = first_config(production, B2A, reason="made during a Redis outage")
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
    change = first_config(production, B2A, reason="initial")
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
    initial = first_config(production, B2A, reason="initial")
    state_of(initial, "in_effect")
    edge.knobs(kv_faults=[{"method": "PUT", "status": 429, "retry_after": 2}])
    increase = change_config(production, B2B, reason="phase B2b", expected_version=1)
    wait_for(lambda: ConfigChange.objects.get(pk=increase.pk).attempts >= 1, message="a try")
    stop = change_config(
        production,
        EMERGENCY,
        kind="emergency_stop",
        reason="5xx spike",
        expected_version=None,
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
    change = first_config(production, B2A, reason="initial")
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


# Production timings for both workers: a 5 s HTTP timeout and the default lease of 4 × that.
PRODUCTION_TIMINGS = {"HTTP_TIMEOUT_SECONDS": 5, "KV_WRITE_LEASE_SECONDS": 20}
# The dead worker's PUT is served this long after it arrived: after the stop's write, usually.
DEAD_PUT_HANG = 10


def test_an_emergency_stop_does_not_wait_for_the_lease_of_a_worker_killed_mid_write(
    edge, production, start_worker
):
    doomed = start_worker(pool="solo", name="doomed", env=PRODUCTION_TIMINGS)
    edge.knobs(kv_faults=[{"method": "PUT", "hang": DEAD_PUT_HANG}])
    initial = first_config(production, B2A, reason="initial")
    dead_put = wait_for(lambda: edge.requests("PUT"), timeout=20, message="the PUT to arrive")[0]
    held_by = lease_token(production)
    assert held_by is not None and state_of(initial, "applying")
    rescuer = start_worker(name="rescuer", env=PRODUCTION_TIMINGS)
    os.kill(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait(timeout=10)
    assert lease_token(production) == held_by, "the dead worker's lease must still be there"

    seen = len(edge.requests())
    clicked = time.time()
    stop = controls.emergency_stop(environment=production, reason="5xx spike", system="test")

    def emergency_put():
        return next(
            (
                r
                for r in edge.requests("PUT", since=seen)
                if r["status"] == 200 and json.loads(r["body"])["emergency_proxy"]
            ),
            None,
        )

    put = wait_for(emergency_put, timeout=15, message="the emergency stop's PUT at the KV API")
    state_of(stop, "in_effect", timeout=15)
    assert AuditEntry.objects.filter(action="config.lease_taken_over").count() == 1

    # The API serves the dead worker's PUT after all; landing over the stop, it is undone.
    wait_for(
        lambda: edge.requests("PUT")[0]["status"] is not None,
        timeout=DEAD_PUT_HANG + 5,
        message="the dead worker's PUT to be served",
    )
    wait_for(
        lambda: observe(production.pk).drift.kv_state == "in_sync",
        timeout=15,
        interval=0.5,
        message="KV to hold the stop again",
    )
    kv_value = json.loads(edge.kv_value(NAMESPACES["production"]))
    assert kv_value["emergency_proxy"] is True and kv_value["canary_percent"] == 0
    assert not AuditEntry.objects.filter(action="drift.external_change").exists()
    assert "ready." in rescuer.output()

    states = dict(
        ConfigChange.objects.filter(environment=production).values_list("version", "state")
    )
    dead_put = edge.requests("PUT")[0]
    figures = {
        "requested": 2,
        "lost": sum(state in ("requested", "applying", "failed") for state in states.values()),
        "superseded": sum(state == "superseded" for state in states.values()),
        "click → PUT": f"{put['time'] - clicked:.2f} s",
        "dead worker's PUT answered": dead_put["status"],
        "re-applied by the guard": ConfigChange.objects.filter(
            environment=production, requested_by_system="late-write-guard"
        ).count(),
        "KV ended in": read_settings(edge.kv_value(NAMESPACES["production"])).describe(),
    }
    report("Worker killed (SIGKILL) mid-write, then an emergency stop", figures)
    assert figures["lost"] == 0
