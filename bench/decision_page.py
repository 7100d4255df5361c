#!/usr/bin/env python
"""The decision page of a 48-hour window on PostgreSQL.

    .venv/bin/python bench/decision_page.py [--hours 48] [--requests 50]

Fills the database ``rollout_bench_decisions`` (dropped and re-created) with a B2b window whose
config took effect ``--hours`` hours ago: one bucket per minute and cohort with a realistic
latency histogram (about 40 non-empty bins each). Then times, through Django's test client:
building the evidence alone, the phase page, the evidence poll every open page sends each 30 s,
and the Markdown report.
"""

import os
import random
import statistics
import sys
from datetime import timedelta
from pathlib import Path

import common  # bench/common.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
common.use_bench_settings("rollout_bench_decisions", LOG_FORMAT="text")


def fill(hours):
    from django.utils import timezone

    from integrations.histogram import Histogram
    from metrics.models import MinuteBucket
    from rollout.models import Phase, PhaseRun, Rollout, RolloutPlan, Service
    from rollout.services import phases
    from tests.support.rollouts import bucket

    service = Service.objects.create(name="pix-immo-api")
    environment = common.placeholder_environment(service)
    plan = RolloutPlan.objects.create(service=service, name="B2")
    phase = Phase.objects.create(
        plan=plan, position=1, tag="B2b", percent=25, min_observation=timedelta(hours=hours)
    )
    common.person("theo", "tech lead")
    now = timezone.now().replace(second=0, microsecond=0)
    in_effect = now - timedelta(hours=hours)
    rollout = Rollout.objects.create(plan=plan, environment=environment, build="bench")
    run = PhaseRun.objects.create(rollout=rollout, phase=phase, started_at=in_effect)
    phases.begin_window(rollout, run, in_effect_at=in_effect, now=in_effect)

    rng = random.Random(7)
    rows = []
    for minute_index in range(hours * 60):
        minute = in_effect + timedelta(minutes=minute_index)
        for cohort, requests, median in (("native", 300, 130.0), ("proxy", 900, 120.0)):
            histogram = Histogram()
            for _ in range(requests):
                histogram.add(rng.lognormvariate(0, 0.5) * median)
            rows.append(bucket(environment, minute, cohort, histogram, errors=rng.randrange(3)))
        if len(rows) >= 2000:
            MinuteBucket.objects.bulk_create(rows)
            rows = []
    MinuteBucket.objects.bulk_create(rows)
    return run


def main():
    args = common.arguments(__doc__, hours=48, requests=50)
    common.migrated_database(os.environ["DATABASE_URL"])
    from django.utils import timezone

    from rollout.services.evidence import build

    run = common.filled(f"{args.hours * 120:,} buckets", fill, args.hours)
    client = common.page_client("theo", analyze="metrics_minutebucket")
    digest = build(run, timezone.now()).digest

    def get(url):
        def action():
            response = client.get(url)
            assert response.status_code in (200, 204), (url, response.status_code)

        return action

    cases = [
        (
            "evidence alone (window figures, recommendation, digest)",
            lambda: build(run, timezone.now()),
        ),
        ("phase page", get(f"/phases/{run.public_id}/")),
        (
            "evidence poll (unchanged: 204)",
            get(f"/phases/{run.public_id}/evidence-check/?seen={digest}"),
        ),
        ("report (Markdown)", get(f"/phases/{run.public_id}/report.md")),
    ]
    print(f"{args.hours} h window, {args.requests} requests a case")
    print("| case | median | p99 |")
    print("| --- | --- | --- |")
    for label, action in cases:
        action()  # warm
        times = common.timings(action, args.requests)
        p99 = common.percentile(times, 0.99)
        print(f"| {label} | {statistics.median(times):.1f} ms | {p99:.1f} ms |")


if __name__ == "__main__":
    main()
