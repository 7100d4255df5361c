#!/usr/bin/env python
"""False fires of the critical native-5xx rule under the threshold: today's rule (settled minutes
only) against a minute still arriving that proves a breach, and against overwhelming evidence.

    .venv/bin/python bench/false_fires.py [--days 7] [--volumes 300,3000]
        [--rates 0.5,1.5,2.5] [--seed 1]

Generated traffic, no database: the native cohort's requests per minute vary around a volume
(log-normal, sigma 0.15) and its 5xx rate around the true rate (log-normal, sigma 0.3, then
binomial), as real minutes do; a minute's requests fall at random into its six 10-second
slices. Logpush files of 60 seconds at a random phase carry each slice's lines in proportion to
the time they cover; a file lands 5-30 s after its end, and one in twenty lands 1-5 minutes
late. After every landing the rule is judged by ``metrics.alerts.judge`` (the function the
ingestion task calls) on what has landed (minute buckets and native slices, as ingestion keeps
them), three ways:

- ``today``: settled minutes only (margin 0: nothing is judged before it settles);
- ``certain``: plus minutes still arriving that prove the breach (margin 1.5);
- ``certain + evidence``: plus overwhelming evidence (3x the threshold, 200 requests, 99.9 %),
  on the slices.

Rates above the threshold (``--rates 5,10``) show the other side: the same incidents, fired
before their minutes settled.

A fire is a transition to firing that opens an incident; the alert then lives on as it would
(resolved by a settled minute under the threshold), so a run can fire more than once.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from integrations.logpush import SLICE_SECONDS, SLICES_PER_MINUTE  # noqa: E402
from metrics import alerts  # noqa: E402
from metrics.models import AlertRule, AlertState  # noqa: E402

START = datetime(2026, 1, 5, tzinfo=UTC)
FILE_SECONDS = 60
SETTLE = timedelta(minutes=1)
KEPT = timedelta(minutes=40)  # minutes of buckets the judgement can look at
GUARD = 20
MODES = {
    "today": alerts.Early(margin=0),
    "certain": alerts.Early(margin=1.5),
    "certain + evidence": alerts.Early(margin=1.5, evidence=True, multiple=3.0, min_requests=200),
}


def slices_of_traffic(rng: random.Random, minutes: int, volume: float, rate: float):
    """(requests, 5xx) of each 10-second slice of the native cohort, minute after minute."""
    for _ in range(minutes):
        requests = poisson(rng, volume * math.exp(rng.gauss(0, 0.15)))
        p = min(1.0, rate * math.exp(rng.gauss(0, 0.3) - 0.045))  # mean stays at ``rate``
        for part in range(SLICES_PER_MINUTE, 0, -1):  # the minute's requests at random
            count = requests if part == 1 else binomial(rng, requests, 1 / part)
            requests -= count
            yield count, binomial(rng, count, p)


def poisson(rng: random.Random, mean: float) -> int:
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))  # normal approximation: mean ≥ 100


def binomial(rng: random.Random, n: int, p: float) -> int:
    spread = n * p * (1 - p)
    if spread < 25:
        return sum(1 for _ in range(n) if rng.random() < p)
    return min(n, max(0, round(rng.gauss(n * p, math.sqrt(spread)))))  # normal approximation


def files(rng: random.Random, slices: int, traffic: list[tuple[int, int]]):
    """(lands at, covers until, {slice index: (requests, 5xx)}) of each 60-second file."""
    phase = rng.uniform(0, FILE_SECONDS)
    width = float(SLICE_SECONDS)
    start, end_all = -phase, slices * width
    left = [list(part) for part in traffic]
    found = []
    while start < end_all:
        end = start + FILE_SECONDS
        share: dict[int, tuple[int, int]] = {}
        for index in range(max(0, int(start // width)), min(slices, math.ceil(end / width))):
            lo, hi = max(start, index * width), min(end, index * width + width)
            if hi <= lo:
                continue
            remaining = index * width + width - lo  # seconds of the slice not yet in a file
            fraction = min(1.0, (hi - lo) / remaining) if remaining > 0 else 1.0
            requests = round(left[index][0] * fraction)
            errors = min(requests, round(left[index][1] * fraction))
            left[index][0] -= requests
            left[index][1] -= errors
            share[index] = (requests, errors)
        late = rng.uniform(60, 300) if rng.random() < 0.05 else 0.0
        found.append((end + rng.uniform(5, 30) + late, min(end, end_all), share))
        start = end
    return sorted(found, key=lambda item: item[0])


def simulate(rule: AlertRule, early: alerts.Early, landed_files) -> tuple[int, int]:
    """Fires, and how many of them came before the minute settled."""
    cells: dict[datetime, dict] = {}
    slices: dict[datetime, tuple[int, int]] = {}
    at = alerts.Position(AlertState.State.INACTIVE, None, False)
    last_minute = None
    newest_seconds = None
    fires = before_settling = 0
    for _lands, until, share in landed_files:
        for index, (requests, errors) in share.items():
            minute = START + timedelta(minutes=index // SLICES_PER_MINUTE)
            have = cells.get(minute, {}).get("native", (0, 0, b""))
            cells[minute] = {"native": (have[0] + requests, have[1] + errors, b"")}
            begins = START + timedelta(seconds=index * SLICE_SECONDS)
            have = slices.get(begins, (0, 0))
            slices[begins] = (have[0] + requests, have[1] + errors)
        newest_seconds = until if newest_seconds is None else max(newest_seconds, until)
        newest = (START + timedelta(seconds=newest_seconds)).replace(second=0, microsecond=0)
        for old in [minute for minute in cells if minute < newest - KEPT]:
            del cells[old]
        for old in [begins for begins in slices if begins < newest - KEPT]:
            del slices[old]
        judgement = alerts.judge(
            rule,
            at,
            last_minute,
            alerts.MinuteData(cells, {}, slices),
            horizon=newest - SETTLE,
            newest=newest,
            guard=GUARD,
            plan_percent=None,
            early=early,
        )
        for step in judgement.steps:
            if step.new == AlertState.State.FIRING and step.announce:
                fires += 1
                before_settling += step.figures.get("settled") is False or bool(
                    step.figures.get("overwhelming_evidence")
                )
        at, last_minute = judgement.at, judgement.last_minute
    return fires, before_settling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--volumes", default="300,3000", help="native requests a minute")
    parser.add_argument("--rates", default="0.5,1.5,2.5", help="true native 5xx rates, %%")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rule = AlertRule(
        name="native-5xx-critical",
        kind=AlertRule.Kind.NATIVE_5XX,
        threshold=3.0,
        for_minutes=3,
        severity=AlertRule.Severity.CRITICAL,
    )
    minutes = int(args.days * 24 * 60)
    print(
        f"{args.days:g} simulated days per row; fires of native-5xx-critical (3.0% for 3 min), "
        "in brackets those before the minute settled"
    )
    print(f"| native req/min | true 5xx | {' | '.join(MODES)} |")
    print(f"| ---: | ---: | {' | '.join('---:' for _ in MODES)} |")
    for volume in (float(v) for v in args.volumes.split(",")):
        for rate in (float(r) for r in args.rates.split(",")):
            rng = random.Random(f"{args.seed}-{volume}-{rate}")
            traffic = list(slices_of_traffic(rng, minutes, volume, rate / 100))
            landed = files(rng, len(traffic), traffic)
            counts = [simulate(rule, early, landed) for early in MODES.values()]
            shown = [f"{fires} ({early})" for fires, early in counts]
            print(f"| {volume:,.0f} | {rate}% | {' | '.join(shown)} |", flush=True)


if __name__ == "__main__":
    main()
