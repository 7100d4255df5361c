#!/usr/bin/env python
"""The cohort sampler against the runbook's loop, in the same run, against the edge stand-in.

    .venv/bin/python bench/sampler_vs_curl.py [--runs 5] [--curl-runs 3]

The runbook's way is ``for i in $(seq 100); do curl -s URL | jq -r .canary.cohort; done`` (run
by bash, as the runbook does). The sampler's way is ``monitoring.sampler.sample_edge`` (the code
the task runs: one connection pool, bounded concurrency, no cookies, 429 handling) plus the
verdict (binomial test and Wilson interval). The stand-in's rate limit is off, as the runbook's
loop would trip it at the 11th request; its config is 10 %, visible to the edge at once. Each
figure is the median of several runs after one warm-up, the client's setup included. Targets:
100 probes at least 20x faster than the loop, and 1,000 probes in under 2 s.
"""

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

CONFIG = '{"canary_percent":10,"canary_tag":"B2a","emergency_proxy":false}'


def runbook_loop(url: str, n: int) -> tuple[float, list[str]]:
    script = f"for i in $(seq {n}); do curl -s {url} | jq -r .canary.cohort; done"
    started = time.perf_counter()
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout.split()


def sampler_run(url: str, n: int, concurrency: int):
    from django.conf import settings

    from monitoring.sampler import judge, sample_edge

    started = time.perf_counter()
    counts = asyncio.run(
        sample_edge(url, size=n, concurrency=concurrency, timeout=5.0, max_seconds=60.0)
    )
    judgement = judge(
        counts,
        expected_percent=10,
        expected_tag="B2a",
        emergency=False,
        alpha=settings.COHORT_SAMPLE_ALPHA,
        max_failed_share=settings.COHORT_SAMPLE_MAX_FAILED_SHARE,
    )
    return time.perf_counter() - started, counts, judgement


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="sampler runs per size")
    parser.add_argument("--curl-runs", type=int, default=3, help="runs of the runbook loop")
    parser.add_argument("--concurrency", type=int, default=None)
    args = parser.parse_args()
    for tool in ("curl", "jq", "bash"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed for the runbook's loop")

    import django

    django.setup()
    from django.conf import settings

    from tests.support.edge import EdgeStandIn

    concurrency = args.concurrency or settings.COHORT_SAMPLE_CONCURRENCY
    with EdgeStandIn(
        namespaces={"production": "ns-bench"}, rate_limit=0, propagation_delay=0
    ) as edge:
        edge.put_external("production", CONFIG)
        url = edge.qa_url("production")
        runbook_loop(url, 3)  # warm-up: page cache for curl and jq
        sampler_run(url, 50, concurrency)  # warm-up: imports, TLS context

        loop_times, cohorts = [], []
        for _ in range(args.curl_runs):
            seconds, cohorts = runbook_loop(url, 100)
            loop_times.append(seconds)
        runs_100 = [sampler_run(url, 100, concurrency) for _ in range(args.runs)]
        runs_1000 = [sampler_run(url, 1000, concurrency) for _ in range(args.runs)]

    loop = statistics.median(loop_times)
    s100 = statistics.median(run[0] for run in runs_100)
    s1000 = statistics.median(run[0] for run in runs_1000)
    worst_1000 = max(run[0] for run in runs_1000)
    _, counts, judgement = runs_1000[-1]
    ratio = loop / s100
    print(f"edge stand-in at {url}, rate limit off, plan 10 %, concurrency {concurrency}")
    print(
        f"runbook loop (curl | jq), 100 probes: {loop:.3f} s median of {args.curl_runs} "
        f"({cohorts.count('native')} native / {cohorts.count('proxy')} proxy, no verdict)"
    )
    print(f"sampler, 100 probes:                 {s100 * 1000:.0f} ms median of {args.runs}")
    print(f"ratio:                               {ratio:.1f}x faster (target >= 20x)")
    print(
        f"sampler, 1000 probes:                {s1000:.3f} s median of {args.runs}, "
        f"worst {worst_1000:.3f} s (target < 2 s)"
    )
    print(
        f"last 1000-probe sample: native {counts.native}, proxy {counts.proxy}, "
        f"429 {counts.rate_limited}, failed {counts.failed}; {judgement.verdict}: "
        f"{judgement.reason}"
    )
    met = ratio >= 20 and s1000 < 2.0
    print("targets met" if met else "TARGETS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
