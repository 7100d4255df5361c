"""Judging before a minute has settled: what the lines already in prove.

Two questions, both about the native 5xx rate and both answered from counts alone (no database),
so the simulation in ``bench/false_fires.py`` asks them exactly as the rules do:

- *A certain breach.* A minute whose files are still coming in breaches for sure when its 5xx
  are above the threshold even if every line still missing is a success: the 5xx counted
  against the most requests the minute can have (the lines in, or the busiest of the cohort's
  recent settled minutes times a margin, whichever is more). The settled minute can then only
  breach too, as long as traffic does not jump above that margin within a minute.
- *Overwhelming evidence.* The lines in, from some slice of seconds on (the native cohort's
  counts per ``integrations.logpush.SLICE_SECONDS``, so that the healthy seconds before a fault
  do not dilute it), put the rate's lower confidence bound far above the threshold: a one-sided
  bound at 99.9 % (Wilson), over at least a given number of requests. This is a statistical
  judgement, not a certainty; it is opt-in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from integrations.stats import wilson_interval

EVIDENCE_CONFIDENCE = 0.999  # one-sided: the true rate is below the bound with probability 0.1 %
RECENT_MINUTES = 10  # settled minutes whose busiest sets a minute's most requests


def most_requests(recent: list[int], margin: float) -> int | None:
    """The most requests a minute can have, from the cohort's recent settled minutes; None
    without any (nothing to bound the missing lines by: wait for the minute to settle), and
    with a margin of 0 (minutes are judged only once settled)."""
    busiest = max((count for count in recent if count > 0), default=0)
    if not busiest or margin <= 0:
        return None
    return math.ceil(busiest * margin)


def certain_percent(errors: int, arrived: int, ceiling: int | None) -> float | None:
    """The lowest 5xx rate the minute can still end with (every missing line a success)."""
    if ceiling is None or arrived == 0:
        return None
    return 100 * errors / max(arrived, ceiling)


def lower_bound_percent(errors: int, requests: int) -> float:
    """The one-sided lower confidence bound of the rate at EVIDENCE_CONFIDENCE, in percent."""
    low, _high = wilson_interval(errors, requests, 1 - 2 * (1 - EVIDENCE_CONFIDENCE))
    return 100 * low


@dataclass(frozen=True)
class Evidence:
    """Slices from ``first`` on, pooled: their requests, 5xx, and the rate's lower bound."""

    first: datetime  # the start of the first slice pooled
    requests: int
    errors: int
    lower_percent: float
    needed_percent: float

    def figures(self) -> dict:
        return {
            "overwhelming_evidence": True,
            "evidence_from": self.first.isoformat(),
            "evidence_requests": self.requests,
            "evidence_5xx": self.errors,
            "evidence_lower_bound_percent": round(self.lower_percent, 2),
            "evidence_needed_percent": round(self.needed_percent, 2),
            "evidence_confidence_percent": round(100 * EVIDENCE_CONFIDENCE, 1),
        }


def overwhelming(
    slices: list[tuple[datetime, int, int]],
    *,
    threshold: float,
    multiple: float,
    min_requests: int,
) -> Evidence | None:
    """``slices``: (start, requests, 5xx), oldest first, ending with the newest that has lines.
    Of the runs ending there with at least ``min_requests`` requests whose pooled lower bound
    is above ``multiple`` × ``threshold``, the one with the highest bound (the run that starts
    where the failure does), or None."""
    needed = multiple * threshold
    best = None
    requests = errors = 0
    for start, count, failed in reversed(slices):
        requests += count
        errors += failed
        if requests < max(min_requests, 1):
            continue
        low = lower_bound_percent(errors, requests)
        if low > needed and (best is None or low >= best.lower_percent):
            best = Evidence(start, requests, errors, low, needed)
    return best
