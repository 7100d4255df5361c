#!/usr/bin/env python
"""The fault suite: runs the fault tests (real processes on 127.0.0.1: a private
redis-server, Celery workers, gunicorn, a private PostgreSQL cluster, the edge stand-in) and
prints, per case, "requested / applied exactly once / lost / duplicated" as a Markdown table.

    .venv/bin/python bench/fault_suite.py

Each test reports its figures through tests/support/fault_figures.py, which appends one JSON
line per case to the file named by FAULT_FIGURES_FILE. pytest's own output goes to stderr, the
table to stdout. Exits non-zero when a test failed, a test reported no figures, or a case lost
or duplicated a change. Needs PostgreSQL on 127.0.0.1:5432 (the test database) and the
PostgreSQL server binaries and redis-server on the machine.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TESTS = [
    "tests/test_faults_broker.py::test_clicks_while_redis_is_down_are_recorded_and_applied",
    "tests/test_faults_broker.py::test_redis_restarted_while_a_worker_writes",
    "tests/test_kv_writer_worker.py::test_a_worker_killed_mid_write_ends_in_exactly_one_applied_state",
    "tests/test_kv_writer_worker.py::test_two_workers_racing_on_one_environment_write_once",
    "tests/test_kv_writer.py::test_a_burst_of_429_and_5xx_ends_written_once",
    "tests/test_kv_writer.py::test_429_is_retried_after_the_time_the_api_asks_for",
    "tests/test_kv_writer.py::test_500_three_times_then_success",
    "tests/test_kv_writer.py::test_a_write_without_an_answer_is_retried[timeout]",
    "tests/test_kv_writer.py::test_a_write_without_an_answer_is_retried[dropped-connection]",
    "tests/test_faults_database.py::test_postgres_away_and_back_while_web_and_worker_run",
    "tests/test_faults_edge_qa.py::test_checks_record_a_flapping_edge_with_the_right_verdicts",
    "tests/test_kv_writer_worker.py::test_an_emergency_stop_wins_over_an_increase_still_retrying",
    "tests/test_late_write.py::test_a_hung_increase_landing_after_an_emergency_stop_is_undone",
    "tests/test_kv_writer_worker.py::"
    "test_an_emergency_stop_does_not_wait_for_the_lease_of_a_worker_killed_mid_write",
]
COLUMNS = ["requested", "applied exactly once", "lost", "duplicated writes"]
OUTCOMES = {"failure": "failed", "error": "error", "skipped": "skipped"}


def main():
    load_at_start = os.getloadavg()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fault-suite-") as scratch:
        figures_file = Path(scratch) / "figures.jsonl"
        junit_file = Path(scratch) / "junit.xml"
        figures_file.touch()
        pytest = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-q",
                f"--junitxml={junit_file}",
                *TESTS,
            ],
            cwd=ROOT,
            env=dict(os.environ, FAULT_FIGURES_FILE=str(figures_file)),
            stdout=sys.stderr,
        )
        wall_seconds = time.monotonic() - started
        reports = [json.loads(line) for line in figures_file.read_text().splitlines()]
        results = test_results(junit_file) if junit_file.exists() else {}

    print(
        f"date {date.today()}, load average (1 min) at start {load_at_start:.2f}, "
        f"wall time {wall_seconds:.1f} s, pytest exit code {pytest.returncode}\n"
    )
    print("| case | requested | applied exactly once | lost | duplicated | other figures | test |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    problems = []
    for test in TESTS:
        result = results.get(test, "not run")
        cases = [r for r in reports if r["test"] == test]
        if not cases:
            problems.append(f"{test} reported no figures")
            print(f"| `{test}` | — | — | — | — | no figures | {result} |")
        for case in cases:
            figures = case["figures"]
            if figures.get("lost") or figures.get("duplicated writes"):
                problems.append(f"{case['case']} lost or duplicated a change")
            counts = " | ".join(str(figures.get(column, "—")) for column in COLUMNS)
            others = "; ".join(f"{k} {v}" for k, v in figures.items() if k not in COLUMNS)
            print(f"| {case['case']} | {counts} | {others} | {result} |")
    for problem in problems:
        print(problem, file=sys.stderr)
    if pytest.returncode != 0 or problems:
        sys.exit(1)


def test_results(junit_file: Path) -> dict[str, str]:
    """'passed (12.3 s)', 'failed', … per test id, from pytest's JUnit XML report."""
    results = {}
    for case in ElementTree.parse(junit_file).iter("testcase"):
        test = case.get("classname").replace(".", "/") + ".py::" + case.get("name")
        outcome = next((OUTCOMES[o.tag] for o in case if o.tag in OUTCOMES), "passed")
        results[test] = f"{outcome} ({float(case.get('time')):.1f} s)"
    return results


if __name__ == "__main__":
    main()
