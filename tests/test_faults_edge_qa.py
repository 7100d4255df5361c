"""The edge's ``/api/qa`` flapping between healthy and broken while the scheduled health checks
run, with real processes: a Celery worker takes beat's ``observe_environments`` and probes the edge
stand-in over HTTP. Every check must be recorded with the verdict the edge deserved at that
moment, and none may crash. Reports "checks run / recorded healthy / recorded broken / crashed"
(tests/support/fault_figures.py).
"""

import json
import threading
import time

import pytest

from monitoring.models import HealthCheck
from monitoring.tasks import observe_environments
from tests.conftest import make_environment, wait_for
from tests.monitoring.conftest import write_plan
from tests.support.fault_figures import report

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

# The worker's bound on each probe read is HTTP_TIMEOUT_SECONDS (1 s in tests/settings.py).
SLOW_MS = 1500
DUE_AFTER = 0.01  # seconds; half the worker's observation interval


class Flapper:
    """Puts the production edge into one state at a time through the stand-in's knobs."""

    def __init__(self, edge, good_config: str):
        self.edge = edge
        self.good_config = good_config

    def set(self, state: str):
        health, latency, config = "ok", 0, self.good_config
        if state == "component error":
            health = "connection timeout"  # the edge reports "error: connection timeout"
        elif state == "slow":
            latency = SLOW_MS
        elif state == "bad config":
            config = '{"canary_percent": "ten"'  # what a hand-typed wrangler put could leave
        self.edge.knobs(health={"production": {"database": health}}, latency_ms=latency)
        self.edge.put_external("production", config)


# What a check of each state must record: the verdict, and a word its reason must contain.
EXPECTED = {
    "healthy": ("ok", "healthy"),
    "component error": ("failed", "database"),
    "slow": ("failed", "timed out"),
    "bad config": ("failed", "degraded"),
}


def crashes_in(output: str) -> list[str]:
    """Error lines and tracebacks in the worker's log (JSON lines, see config/log_format.py)."""
    found = []
    for line in output.splitlines():
        if "Traceback" in line:
            found.append(line[:300])
        elif line.startswith("{") and json.loads(line)["level"] in ("ERROR", "CRITICAL"):
            found.append(line[:300])
    return found


def test_checks_record_a_flapping_edge_with_the_right_verdicts(edge, start_worker):
    started = time.monotonic()
    environment = make_environment(edge)
    write_plan(environment)
    flapper = Flapper(edge, edge.kv_value("production"))
    # A check within half an interval of the last one is skipped (observation.claim: a doubled
    # message records nothing); each round below waits out those 10 ms, so every one runs.
    worker = start_worker(env={"OBSERVE_INTERVAL_SECONDS": str(2 * DUE_AFTER)})

    # Part 1: the edge changes state between checks; each check has one right verdict.
    broken_states = ["component error", "slow", "bad config"]
    states = [
        "healthy" if n % 2 == 0 else broken_states[(n // 2) % len(broken_states)] for n in range(24)
    ]
    states[5:7] = ["healthy", "healthy"]  # a run of two healthy checks, and two broken ones
    states[12:14] = ["slow", "component error"]
    wrong, missing = [], 0
    for number, state in enumerate(states, start=1):
        flapper.set(state)
        time.sleep(DUE_AFTER)
        observe_environments.delay()  # what beat sends every OBSERVE_INTERVAL_SECONDS
        try:
            wait_for(
                lambda n=number: HealthCheck.objects.filter(environment=environment).count() >= n,
                timeout=15,
                interval=0.05,
                message=f"check {number} ({state}) to be recorded",
            )
        except AssertionError:
            missing += 1
            break
        check = HealthCheck.objects.filter(environment=environment).order_by("-pk").first()
        verdict, word = EXPECTED[state]
        if check.verdict != verdict or word not in f"{check.reason} {check.problems}":
            wrong.append((number, state, check.verdict, check.reason))
    checks = HealthCheck.objects.filter(environment=environment)
    figures = {
        "checks run": len(states),
        "recorded healthy": checks.filter(verdict="ok").count(),
        "recorded broken": checks.filter(verdict="failed").count(),
        "crashed": missing + len(crashes_in(worker.output())),
        "wrong verdict": len(wrong),
    }
    report("/api/qa flapping, one state per check", figures)
    assert wrong == [], wrong
    assert figures["crashed"] == 0, crashes_in(worker.output())
    assert figures["recorded healthy"] == states.count("healthy")
    assert figures["recorded broken"] == len(states) - states.count("healthy")

    # Part 2: the edge flaps faster than the checks run (every 30 ms, between healthy and a
    # component in error). A check may see either state, but what it records must agree with
    # the answer it got: "ok" only for a healthy document, "failed" only for an error.
    flapping = threading.Event()

    def flap():
        healthy = True
        while not flapping.is_set():
            edge.knobs(
                health={"production": {"database": "ok" if healthy else "connection timeout"}}
            )
            healthy = not healthy
            flapping.wait(0.03)

    flapper.set("healthy")
    before = checks.count()
    thread = threading.Thread(target=flap, daemon=True)
    thread.start()
    try:
        for number in range(1, 16):
            time.sleep(DUE_AFTER)
            observe_environments.delay()
            wait_for(
                lambda n=number: checks.count() >= before + n,
                timeout=15,
                interval=0.02,
                message=f"check {number} while flapping to be recorded",
            )
    finally:
        flapping.set()
        thread.join(timeout=5)
    fast = list(checks.order_by("pk")[before:])
    inconsistent = [
        (c.verdict, c.reason, c.health)
        for c in fast
        if (c.verdict == "ok")
        != (c.reported_status == "healthy" and c.health.get("database") == "ok")
    ]
    fast_figures = {
        "checks run": 15,
        "recorded healthy": sum(c.verdict == "ok" for c in fast),
        "recorded broken": sum(c.verdict == "failed" for c in fast),
        "crashed": 15 - len(fast) + len(crashes_in(worker.output())),
        "verdict against its own answer": len(inconsistent),
    }
    report("/api/qa flapping every 30 ms", fast_figures)
    assert inconsistent == [], inconsistent
    assert fast_figures["crashed"] == 0, crashes_in(worker.output())
    assert worker.process.poll() is None, "the worker must still run"
    assert time.monotonic() - started < 90
