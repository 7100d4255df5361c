#!/usr/bin/env python
"""Log ingestion against DuckDB: one day of the runbook's traffic (1,000,000 http_requests lines
in 5-minute gzip NDJSON files) from the directory source into PostgreSQL minute buckets, and
DuckDB reading the same files and computing the same per-cohort counts and percentiles.

    .venv/bin/python bench/ingest_vs_duckdb.py [--lines 1000000] [--repeat 3] [--processes 2]

Uses the database ``rollout_bench_metrics`` (dropped and re-created; BENCH_DATABASE_URL to
change it). The files are generated once by the edge stand-in's generator into
``var/bench/logpush-<lines>/`` and reused. Each side runs ``--repeat`` times, alternating; the
median counts. "Ours" is the whole ingestion run (list, read, decompress, parse, fold, write
the buckets) plus reading the day's per-cohort figures back from the buckets; DuckDB's is its
query alone, in its own process (its start-up and import are not counted against it). Peak
memory is the resident set of every process of each side (ours: the task and its pool), sampled
every 20 ms.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import migrated_database, placeholder_environment  # bench/common.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rollout_bench_metrics"
)
os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings",
    DATABASE_URL=DATABASE_URL,
    CELERY_BROKER_URL="memory://",
    SECRET_KEY="bench-only-secret-key-0123456789abcdefghijklmnop",
    LOG_LEVEL="WARNING",
    METRICS_LOOKBACK_HOURS=str(24 * 365 * 30),
)
START = datetime(2025, 11, 12, tzinfo=UTC).timestamp()
PREFIX = "b2a/http_requests/"
QUANTILES = (0.5, 0.9, 0.99)

DUCKDB_QUERY = """
SELECT regexp_extract(ResponseHeaders['x-pix-canary'], 'cohort=([a-z]+)', 1) AS cohort,
       count(*) AS requests,
       count(*) FILTER (WHERE EdgeResponseStatus >= 500) AS errors_5xx,
       quantile_disc(EdgeTimeToFirstByteMs, [0.5, 0.9, 0.99]) AS ttfb
FROM read_json('{pattern}', format = 'newline_delimited', compression = 'gzip')
GROUP BY 1 ORDER BY 1
"""

DUCKDB_CHILD = """
import json, sys, time, duckdb
query = sys.stdin.read()
connection = duckdb.connect()
connection.execute("SET enable_progress_bar = false")
started = time.perf_counter()
rows = connection.sql(query).fetchall()
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "rows": rows}))
"""


# --- the files ---------------------------------------------------------------------------------


def generate(directory: Path, lines: int) -> None:
    from edge_standin.logpush import Routing, Traffic, gzipped, http_requests, ndjson, object_key

    marker = directory / "COMPLETE"
    if marker.exists():
        return
    print(f"generating {lines:,} lines into {directory} …", flush=True)
    traffic = Traffic(requests_per_minute=lines / 1440)
    traffic.native.update({"latency_spread": 0.6}, "native")
    routing = Routing(10, "B2a", False)
    rng = random.Random(2025)
    for index in range(288):
        start = START + index * 300
        records = http_requests(rng, start, start + 300, routing, traffic)
        key = object_key("b2a/", "http_requests", start, start + 300, rng)
        path = directory / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzipped(ndjson(records)))
    marker.write_text("done\n")


# --- memory ------------------------------------------------------------------------------------


class PeakMemory:
    """Samples the summed resident set of a process and all its descendants."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            time.sleep(0.02)

    @property
    def megabytes(self):
        return self.peak / 2**20


def tree_rss(root: int) -> int:
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, changed = {root}, True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                changed = True
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


# --- the two sides -----------------------------------------------------------------------------


def run_ours(source, processes):
    from metrics import ingest
    from metrics.figures import window_figures
    from metrics.models import LogObject, LogSource, MinuteBucket

    LogObject.objects.all().delete()
    MinuteBucket.objects.all().delete()
    # A run after the first would otherwise be a quick look after the newest key counted.
    LogSource.objects.filter(pk=source.pk).update(listed_after={}, full_listing_at=None)
    with PeakMemory(os.getpid()) as memory:
        started = time.perf_counter()
        report = ingest.ingest_source(source.pk, processes=processes)
        ingested = time.perf_counter() - started
        figures = window_figures(
            source.environment_id,
            datetime.fromtimestamp(START, UTC),
            datetime.fromtimestamp(START, UTC) + timedelta(days=2),
        )
        total = time.perf_counter() - started
    assert not report.errors, report.errors
    return {
        "ingest_seconds": ingested,
        "seconds": total,
        "memory_mb": memory.megabytes,
        "objects": report.counted,
        "lines": report.lines,
        "cohorts": {
            name: {
                "requests": cell.requests,
                "errors_5xx": cell.errors_5xx,
                "ttfb": [cell.ttfb(q) for q in QUANTILES],
            }
            for name, cell in figures.cohorts.items()
        },
    }


def run_duckdb(directory: Path):
    process = subprocess.Popen(
        [sys.executable, "-c", DUCKDB_CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    with PeakMemory(process.pid) as memory:
        output, _ = process.communicate(DUCKDB_QUERY.format(pattern=f"{directory}/{PREFIX}*/*.gz"))
    if process.returncode:
        raise SystemExit("the DuckDB query failed")
    result = json.loads(output.strip().splitlines()[-1])
    cohorts = {
        row[0]: {"requests": row[1], "errors_5xx": row[2], "ttfb": row[3]} for row in result["rows"]
    }
    return {"seconds": result["seconds"], "memory_mb": memory.megabytes, "cohorts": cohorts}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2, help="ingestion's pool size")
    args = parser.parse_args()

    directory = ROOT / "var" / "bench" / f"logpush-{args.lines}"
    generate(directory, args.lines)
    migrated_database(DATABASE_URL)
    from metrics.models import LogSource
    from rollout.models import Service

    service = Service.objects.create(name="pix-immo-api")
    environment = placeholder_environment(service)
    source = LogSource.objects.create(
        environment=environment,
        kind=LogSource.Kind.DIRECTORY,
        directory=str(directory),
        trace_events_prefix="",
    )

    ours, theirs = [], []
    for _ in range(args.repeat):
        ours.append(run_ours(source, args.processes))
        theirs.append(run_duckdb(directory))
        print(
            f"  run: ours {ours[-1]['seconds']:.2f} s "
            f"(ingest {ours[-1]['ingest_seconds']:.2f} s), duckdb {theirs[-1]['seconds']:.2f} s",
            flush=True,
        )
    our_time = statistics.median(run["seconds"] for run in ours)
    ingest_time = statistics.median(run["ingest_seconds"] for run in ours)
    duck_time = statistics.median(run["seconds"] for run in theirs)
    last, duck = ours[-1], theirs[-1]

    worst = 0.0
    for cohort in ("native", "proxy"):
        for name in ("requests", "errors_5xx"):
            if last["cohorts"][cohort][name] != duck["cohorts"][cohort][name]:
                raise SystemExit(f"{cohort} {name} differ: {last['cohorts']} vs {duck['cohorts']}")
        for mine, exact in zip(
            last["cohorts"][cohort]["ttfb"], duck["cohorts"][cohort]["ttfb"], strict=True
        ):
            worst = max(worst, abs(mine - exact) / exact)

    print()
    print(f"lines: {last['lines']:,} in {last['objects']} files of 5 minutes")
    for cohort in ("native", "proxy"):
        cell, exact = last["cohorts"][cohort], duck["cohorts"][cohort]
        print(
            f"{cohort:>6}: {cell['requests']:,} requests, {cell['errors_5xx']:,} 5xx; "
            "p50/p90/p99 ours "
            + "/".join(f"{v:.1f}" for v in cell["ttfb"])
            + " ms, DuckDB "
            + "/".join(f"{v}" for v in exact["ttfb"])
            + " ms"
        )
    print(
        f"ours (ingest into PostgreSQL + read the figures): {our_time:.2f} s (median of "
        f"{args.repeat}; ingestion alone {ingest_time:.2f} s, {args.processes} processes)"
    )
    print(f"DuckDB read_json + quantile_disc:                 {duck_time:.2f} s (median)")
    print(f"ratio ours / DuckDB: {our_time / duck_time:.2f}  (target ≤ 1.00)")
    print(f"worst percentile error against DuckDB: {100 * worst:.2f} %  (target < 1 %)")
    print(
        f"peak memory: ours {max(run['memory_mb'] for run in ours):.0f} MB (target < 500), "
        f"DuckDB {max(run['memory_mb'] for run in theirs):.0f} MB"
    )


if __name__ == "__main__":
    main()
