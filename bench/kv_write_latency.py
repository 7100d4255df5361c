#!/usr/bin/env python
"""Time from committing a config change to (a) the PUT arriving at the KV API and (b) the edge
reporting it, through a real Celery worker on Redis, on PostgreSQL, against the edge stand-in.

    .venv/bin/python bench/kv_write_latency.py [--trials 60]

Uses the database ``rollout_bench`` (dropped and re-created) and Redis database 14 on the
machine's services. Each trial starts 1.1 s after the previous trial's PUT was answered at the
KV API (the stand-in's log), because Workers KV answers 429 to a second write of the same key
within a second; spacing from the previous trial's start instead would let one slow trial push
the next write inside that second, and the run would measure 429 retries. The 429s the KV API
answered during the trials are counted and printed: with this spacing, expect 0. "Commit" is
taken just before the service call that records the change, so its own database work counts
against us.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from common import bench_settings, percentile, recreate_database, wait_for  # bench/common.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rollout_bench"
)
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
bench_settings(DATABASE_URL, BROKER_URL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    args = parser.parse_args()

    recreate_database(DATABASE_URL)
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()

    from tests.support.edge import EdgeStandIn
    from tests.support.worker import celery_worker_command

    # The probes carry a monitoring token the edge exempts from its per-client rate limit,
    # as a production setup would (EDGE_PROBE_HEADERS).
    os.environ["EDGE_PROBE_HEADERS"] = json.dumps({"X-Monitoring-Token": "bench-monitor"})
    with EdgeStandIn(
        namespaces={"production": "ns-bench"},
        token="bench-token",
        propagation_delay=0,
        exempt_token="bench-monitor",
    ) as edge:
        os.environ.update(
            CLOUDFLARE_API_BASE_URL=edge.api_base_url, CLOUDFLARE_API_TOKEN="bench-token"
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        (ROOT / "var").mkdir(exist_ok=True)
        worker_log = open(ROOT / "var" / "bench-kv-worker.log", "w")  # noqa: SIM115
        worker = subprocess.Popen(
            celery_worker_command(loglevel="WARNING"),
            cwd=ROOT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        try:
            put_ms, edge_ms, throttled = run_trials(edge, args.trials)
        finally:
            worker.terminate()
            worker.wait(timeout=20)
    report(put_ms, edge_ms, throttled)


def run_trials(edge, trials):
    from integrations.kv_value import CanarySettings
    from rollout.models import Environment, Service
    from rollout.services import controls

    service = Service.objects.create(name="bench")
    environment = Environment.objects.create(
        service=service,
        name="production",
        cloudflare_account_id=edge.account,
        kv_namespace_id="ns-bench",
        qa_url=edge.qa_url("production"),
        connected_at=None,
    )
    first = controls.create_initial_config(
        environment=environment,
        settings=CanarySettings(1, "B2a", False),
        reason="bench",
        system="bench",
    )
    wait(partial(_in_effect, first.pk), 30)
    time.sleep(1.1)
    trials_start = len(edge.requests())
    put_ms, edge_ms = [], []
    for trial in range(trials):
        percent = 2 + trial % 90
        seen = len(edge.requests())
        started = time.time()
        change = controls.request_change(
            environment=environment,
            settings=CanarySettings(percent, "B2a", False),
            kind="percent_change",
            reason=f"bench trial {trial}",
            expected_version=None,
            system="bench",
        )
        put = wait(partial(_put_with, edge, seen, percent), 10)
        put_ms.append((put["time"] - started) * 1000)
        wait(partial(_in_effect, change.pk), 10)
        change.refresh_from_db()
        edge_ms.append((change.in_effect_at.timestamp() - started) * 1000)
        time.sleep(max(0.0, put["finished"] + 1.1 - time.time()))
    throttled = sum(r["status"] == 429 for r in edge.requests("PUT", since=trials_start))
    return put_ms, edge_ms, throttled


def _in_effect(change_id):
    from rollout.models import ConfigChange

    return ConfigChange.objects.get(pk=change_id).state == "in_effect"


def _put_with(edge, since, percent):
    for entry in edge.requests("PUT", since=since):
        if entry["status"] == 200 and json.loads(entry["body"])["canary_percent"] == percent:
            return entry
    return None


def wait(predicate, timeout):
    # Every 2 ms: the latency is measured to the millisecond.
    return wait_for(predicate, timeout, "the worker (is it running?)", every=0.002)


def report(put_ms, edge_ms, throttled):
    print(f"trials: {len(put_ms)}, PUTs answered 429 (KV's one write a second): {throttled}")
    for label, values in (
        ("commit -> PUT at KV API", put_ms),
        ("commit -> edge reports it", edge_ms),
    ):
        print(
            f"{label:28s} p50 {statistics.median(values):7.1f} ms   "
            f"p99 {percentile(values, 0.99):7.1f} ms   max {max(values):7.1f} ms"
        )


if __name__ == "__main__":
    main()
