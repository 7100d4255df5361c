"""How often the cohort verdict catches a doubled native share, and how often it cries wolf.

A simulation, no server: the edge draws each fresh client's cohort with the plan's share; the
sampler's judgement (``monitoring.sampler.judge``, the same function the task calls) is applied
to one sample, and to the samples of the first hour of a phase pooled as the task pools them
(each new sample one more look, alpha spent over the looks).

    .venv/bin/python bench/cohort_detection.py --runs 4000

Defaults are the settings' defaults: alpha 0.01, samples of 100 every 300 s (12 in the first
hour). ``--answer-rate`` is the share of probes that get a cohort within the time limit.
"""

import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from integrations.stats import binomial_two_sided_p  # noqa: E402
from monitoring.sampler import Pool, SampleCounts, judge  # noqa: E402


def one_sample(rng: random.Random, share: float, size: int, answer_rate: float) -> SampleCounts:
    answered = sum(rng.random() < answer_rate for _ in range(size))
    native = sum(rng.random() < share for _ in range(answered))
    return SampleCounts(size=size, native=native, proxy=answered - native, tags={"B2a": answered})


def first_alarm(rng, *, share, plan, size, looks, answer_rate, alpha) -> int | None:
    """The look at which the pooled verdict first fails, or None within ``looks``."""
    pool = Pool()
    for look in range(1, looks + 1):
        counts = one_sample(rng, share, size, answer_rate)
        verdict = judge(
            counts,
            expected_percent=plan,
            expected_tag="B2a",
            emergency=False,
            alpha=alpha,
            max_failed_share=1.0,
            pool=pool,
        ).verdict
        if verdict == "fail":
            return look
        pool = Pool(pool.samples + 1, pool.native + counts.native, pool.answered + counts.answered)
    return None


def rate(rng, runs, **kwargs) -> float:
    return sum(first_alarm(rng, **kwargs) is not None for _ in range(runs)) / runs


def plain_rate(rng, runs, *, share, plan, size, answer_rate, alpha) -> float:
    """One sample on its own at the full alpha: the verdict before pooling."""
    alarms = 0
    for _ in range(runs):
        counts = one_sample(rng, share, size, answer_rate)
        n = counts.native + counts.proxy
        alarms += bool(n) and binomial_two_sided_p(counts.native, n, plan / 100) < alpha
    return alarms / runs


def median_look(rng, runs, **kwargs) -> float:
    found = sorted(look or 10**6 for look in (first_alarm(rng, **kwargs) for _ in range(runs)))
    return found[len(found) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4000)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--interval", type=float, default=300.0, help="seconds between samples")
    parser.add_argument("--plan", type=int, default=10, help="plan percent")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    looks = int(3600 // args.interval)
    doubled = 2 * args.plan / 100
    print(f"alpha {args.alpha}, samples of {args.size}, {looks} samples in the first hour, "
          f"{args.runs} runs each")  # fmt: skip
    print("| answers per sample | one sample at alpha: detects 2x / false alarm "
          "| pooled, first look: detects 2x | pooled, first hour: detects 2x / false alarm "
          "| median sample of detection |")  # fmt: skip
    for answer_rate in (1.0, 0.6):
        common = {"plan": args.plan, "size": args.size, "alpha": args.alpha}
        common["answer_rate"] = answer_rate
        plain = plain_rate(rng, args.runs, share=doubled, **common)
        plain_false = plain_rate(rng, args.runs, share=args.plan / 100, **common)
        first = rate(rng, args.runs, share=doubled, looks=1, **common)
        pooled = rate(rng, args.runs, share=doubled, looks=looks, **common)
        pooled_false = rate(rng, args.runs, share=args.plan / 100, looks=looks, **common)
        median = median_look(rng, args.runs // 4, share=doubled, looks=looks, **common)
        print(f"| {round(answer_rate * args.size)} | {plain:.1%} / {plain_false:.2%} "
              f"| {first:.1%} | {pooled:.1%} / {pooled_false:.2%} | {median} |")  # fmt: skip


if __name__ == "__main__":
    main()
