"""The GO / NO-GO / HOLD recommendation for an observation window (the decision matrix of
docs/contracts.md, runbook Phase 6).

Plain data in, plain data out: no models, no database, so it can be tested on synthetic windows
and its answer frozen as JSON evidence. People decide and sign; this only recommends.

How the outcome is reached
--------------------------
Each criterion below says, on its own, "go", "hold" or "no_go". The outcome is NO-GO if any says
no_go; otherwise HOLD if any says hold (missing or too little data included); otherwise GO.
The reasons shown are the details of the criteria that decided it.

- Native traffic: fewer native requests than the minimum (500) → HOLD: too little to judge.
- Native 5xx rate over the window, with a 95% Wilson interval:
  GO when even the interval's upper end is below 1.5%. NO-GO ("sustained above 2.0%") when the
  interval's lower end is above 2.0% *and* the rate is above 2.0% in at least half of the hours
  that had native traffic. Anything else → HOLD. When the rate itself is below 1.5% but the
  interval reaches 1.5%, the reason depends on the traffic: under the minimum of native requests
  there was too little traffic to judge; with enough traffic the rate is borderline — the
  interval straddles 1.5%, so nobody can tell which side it is on.
- Native vs proxy 5xx (the team's own rule, not in the runbook), as paired cohorts over the same
  window: the difference native − proxy in percentage points, with a 95% interval (Newcombe's
  hybrid score interval). GO when the upper end is at most 0.5 points (``error_excess_points``,
  overridable per plan like every threshold); otherwise HOLD — "significantly worse" when even
  the lower end is above 0.
- Native p90 time to first byte (merged histogram): GO below 600 ms. NO-GO above 800 ms over the
  window *and* in at least half of the hours with enough native traffic to have a p90. Otherwise
  HOLD. A distribution-free 95% interval for the p90 (from order statistics) is shown beside it.
- Native p90 vs proxy p90: up to 10% above proxy is fine (GO); 10–20% is borderline (HOLD);
  beyond 20% fails GO (HOLD — a NO-GO only comes from another criterion). p50 and p99 of both
  cohorts are shown for the report; their runbook targets (300 ms, 1200 ms) are informational.
- Without proxy traffic the two paired criteria are missing → HOLD.
- Incidents in the window: an emergency stop or a rollback → NO-GO; a critical alert without
  one → HOLD; none → GO.
- Logs: a stretch of more than 15 minutes without log lines means logs are not delivering → HOLD.
- Attestations by people: upload flow (False = data loss / orphaned uploads → NO-GO) and team
  agreement (False = team concern, risk too high → NO-GO). Not given yet → HOLD.
- The build under the window (the team's own rule): a new Worker deployment inside the window
  means its evidence does not come from one build → HOLD until a person chooses: the window is
  restarted from the new build's time (a new window) or kept with a reason (then it passes, the
  reason shown).

"Sustained" counts hours, because a single bad hour (a deploy blip, one noisy client) must not
roll back a release that was healthy for the other 23. When no hour qualifies (a window shorter
than an hour, say), the window itself is the only slice.

All thresholds live in ``Thresholds`` so that a rollout can carry its own later.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from django.utils.translation import gettext_noop

from integrations.stats import difference_interval, quantile_rank_interval, wilson_interval

from ..team_language import for_the_record
from .evidence_words import criterion_sentence

if TYPE_CHECKING:  # the type only: metrics builds on rollout and hands its figures over
    from metrics.figures import CohortFigures, Figures

GO, HOLD, NO_GO = "go", "hold", "no_go"
# Marked for translation (a page shows them in its reader's language); the evidence keeps them.
PASS, BORDERLINE, FAIL, MISSING = (
    gettext_noop("pass"),
    gettext_noop("borderline"),
    gettext_noop("fail"),
    gettext_noop("missing"),
)
# Where a criterion comes from: the runbook's decision matrix (docs/contracts.md), or a rule the
# team added on top of it, which the pages label as such.
RUNBOOK, TEAM = "runbook", "team"

INCIDENT_KINDS = ("emergency_stop", "rollback", "critical_alert")


@dataclass(frozen=True)
class Thresholds:
    """The decision matrix of docs/contracts.md (runbook Phase 6)."""

    go_max_error_percent: float = 1.5  # GO needs native 5xx below this
    nogo_error_percent: float = 2.0  # NO-GO when native 5xx sustained above this
    go_max_p90_ms: float = 600.0
    nogo_p90_ms: float = 800.0
    p90_excess_fine_percent: float = 10.0  # native p90 up to 10% above proxy: fine
    p90_excess_fail_percent: float = 20.0  # 10–20 borderline; beyond 20 fails GO
    error_excess_points: float = 0.5  # native 5xx may exceed proxy's by at most this (paired)
    min_native_requests: int = 500  # below this the window cannot be judged → HOLD
    # An hour with fewer native requests than this has no meaningful p90 of its own, so it is
    # left out when judging whether a slow p90 is sustained.
    min_hourly_requests: int = 100
    max_log_gap_minutes: int = 15  # a longer stretch without logs → logs not delivering
    confidence: float = 0.95
    target_p50_ms: float = 300.0  # runbook target, informational
    target_p99_ms: float = 1200.0  # runbook target, informational

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_overrides(cls, overrides: object) -> Thresholds:
        """The defaults with a plan's overrides applied; ValueError says what is wrong."""
        if overrides in (None, ""):
            return cls()
        if not isinstance(overrides, dict):
            raise ValueError("The thresholds are a JSON object of name: number.")
        known = {item.name: item for item in dataclasses.fields(cls)}
        values = {}
        for name, value in overrides.items():
            if name not in known:
                raise ValueError(f"Unknown threshold {name!r}; known: {', '.join(known)}.")
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"{name} must be a number ≥ 0, not {value!r}.")
            values[name] = int(value) if known[name].type in (int, "int") else float(value)
        thresholds = cls(**values)
        if not 0 < thresholds.confidence < 1:
            raise ValueError("confidence is a share between 0 and 1, e.g. 0.95.")
        for low, high in (
            ("go_max_error_percent", "nogo_error_percent"),
            ("go_max_p90_ms", "nogo_p90_ms"),
            ("p90_excess_fine_percent", "p90_excess_fail_percent"),
        ):
            if getattr(thresholds, low) > getattr(thresholds, high):
                raise ValueError(f"{low} must not be above {high}.")
        return thresholds


@dataclass
class Incident:
    kind: str  # "emergency_stop" | "rollback" | "critical_alert"
    at: datetime
    summary: str  # in English, for the record
    # The summary as a message and its facts (``preview_words.said``), said again in the
    # reader's language (``evidence_words.incident_summary``); None in evidence kept without it.
    said: dict | None = None

    def as_dict(self) -> dict:
        kept = {"kind": self.kind, "at": _iso(self.at), "summary": self.summary}
        return {**kept, "said": self.said} if self.said else kept


@dataclass
class Attestation:
    kind: str  # "upload_flow" | "team_agrees"
    value: bool  # upload_flow: True = healthy; team_agrees: True = stable
    by: str
    at: datetime
    note: str = ""


@dataclass
class BuildShift:
    """A new Worker build that went live inside the window, and what a person chose for it."""

    at: datetime
    old: str
    new: str
    resolution: str = ""  # "" (waiting for a person) | "kept" | "restarted"
    by: str = ""
    reason: str = ""


@dataclass
class Window:
    start: datetime
    end: datetime
    figures: Figures  # totals over [start, end)
    hourly: list[Figures]  # the same window cut into hours, for "sustained"
    log_gaps: list[tuple[datetime, datetime]] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    attestations: dict[str, Attestation] = field(default_factory=dict)  # newest per kind
    build_changes: list[BuildShift] = field(default_factory=list)


@dataclass
class Criterion:
    key: str
    label: str
    status: str  # "pass" | "borderline" | "fail" | "missing"
    verdict: str  # what this criterion alone asks for: "go" | "hold" | "no_go"
    figures: dict  # JSON-ready numbers behind it
    detail: str = ""  # one plain sentence with the figures, in English (evidence_words.py)
    rule: str = RUNBOOK  # "runbook" | "team": whose criterion it is

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "label": self.label,
            "rule": self.rule,
            "status": self.status,
            "verdict": self.verdict,
            "detail": self.detail,
            "figures": self.figures,
        }


@dataclass
class Recommendation:
    outcome: str  # "go" | "hold" | "no_go"
    criteria: list[Criterion]
    reasons: list[str]  # the details of the criteria that decided the outcome
    thresholds: Thresholds = field(default_factory=Thresholds)
    window: dict = field(default_factory=dict)  # the window's figures, as Figures.as_dict()

    def criterion(self, key: str) -> Criterion:
        return next(criterion for criterion in self.criteria if criterion.key == key)

    def as_dict(self) -> dict:
        """JSON-ready with a fixed key order: the same input gives the same bytes (hashed as
        evidence)."""
        return {
            "outcome": self.outcome,
            "reasons": list(self.reasons),
            "criteria": [criterion.as_dict() for criterion in self.criteria],
            "thresholds": self.thresholds.as_dict(),
            "window": self.window,
        }


# Thresholds is frozen, so one shared default instance is safe.
def recommend(window: Window, thresholds: Thresholds = Thresholds()) -> Recommendation:  # noqa: B008
    criteria = [
        _native_traffic(window, thresholds),
        _native_error_rate(window, thresholds),
        _error_rate_vs_proxy(window, thresholds),
        _native_p90(window, thresholds),
        _p90_vs_proxy(window, thresholds),
        _incidents(window),
        _logs(window, thresholds),
        *(_attestation(window, kind) for kind in ATTESTED),
        _build(window),
    ]
    # Each criterion's sentence, as the evidence keeps it (evidence_words.py writes it again,
    # from the same figures, in a reader's language).
    figures = {"thresholds": thresholds.as_dict(), "window": window.figures.as_dict()}
    for criterion in criteria:
        criterion.detail = for_the_record(criterion_sentence, criterion.as_dict(), figures)
    verdicts = {criterion.verdict for criterion in criteria}
    outcome = NO_GO if NO_GO in verdicts else HOLD if HOLD in verdicts else GO
    reasons = [c.detail for c in criteria if c.verdict == outcome] if outcome != GO else []
    return Recommendation(
        outcome=outcome,
        criteria=criteria,
        reasons=reasons,
        thresholds=thresholds,
        window=figures["window"],
    )


# --- traffic and errors ------------------------------------------------------------------------


def _native_traffic(window: Window, t: Thresholds) -> Criterion:
    judged = partial(Criterion, "native_traffic", gettext_noop("Native traffic"))
    requests = window.figures.native.requests
    figures = {"native_requests": requests, "min_native_requests": t.min_native_requests}
    if requests < t.min_native_requests:
        return judged(FAIL, HOLD, figures)  # too little to judge
    return judged(PASS, GO, figures)


def _native_error_rate(window: Window, t: Thresholds) -> Criterion:
    judged = partial(Criterion, "native_5xx", gettext_noop("Native 5xx rate"))
    native = window.figures.native
    if not native.requests:
        return judged(MISSING, HOLD, {})
    rate = native.error_percent
    low, high = _percents(wilson_interval(native.errors_5xx, native.requests, t.confidence))
    hours = _hours(
        window,
        counts=lambda cohort: cohort.requests > 0,
        above=lambda cohort: cohort.error_percent > t.nogo_error_percent,
    )
    figures = {
        "requests": native.requests,
        "errors_5xx": native.errors_5xx,
        "error_percent": _percent(rate),
        "interval_percent": [_percent(low), _percent(high)],
        "confidence": t.confidence,
        "go_max_error_percent": t.go_max_error_percent,
        "nogo_error_percent": t.nogo_error_percent,
        **hours.figures("hours_with_traffic"),
    }
    if high < t.go_max_error_percent:
        return judged(PASS, GO, figures)
    if low > t.nogo_error_percent and hours.sustained:
        return judged(FAIL, NO_GO, figures)
    # Borderline: too little traffic, an interval straddling the GO line, a spike that is not
    # sustained, or a rate between the two lines; the sentence says which.
    return judged(BORDERLINE, HOLD, figures)


def _error_rate_vs_proxy(window: Window, t: Thresholds) -> Criterion:
    """Native and proxy serve the same clients over the same hours, so their difference cancels
    whatever the origin or the clients did to both; what remains is the native path's own."""
    judged = partial(
        Criterion, "native_vs_proxy_5xx", gettext_noop("Native vs proxy 5xx"), rule=TEAM
    )
    native, proxy = window.figures.native, window.figures.proxy
    if not native.requests or not proxy.requests:
        return judged(MISSING, HOLD, {})
    difference = native.error_percent - proxy.error_percent
    low, high = _percents(
        difference_interval(
            native.errors_5xx, native.requests, proxy.errors_5xx, proxy.requests, t.confidence
        )
    )
    figures = {
        "native_error_percent": _percent(native.error_percent),
        "proxy_error_percent": _percent(proxy.error_percent),
        "difference_points": _percent(difference),
        "interval_points": [_percent(low), _percent(high)],
        "confidence": t.confidence,
        "error_excess_points": t.error_excess_points,
    }
    if high <= t.error_excess_points:
        return judged(PASS, GO, figures)
    if low > 0:  # native significantly worse than proxy
        return judged(FAIL, HOLD, figures)
    return judged(BORDERLINE, HOLD, figures)


# --- latency -----------------------------------------------------------------------------------


def _native_p90(window: Window, t: Thresholds) -> Criterion:
    judged = partial(Criterion, "native_p90", gettext_noop("Native p90 TTFB"))
    native = window.figures.native
    p90 = native.ttfb(0.9)
    if p90 is None:
        return judged(MISSING, HOLD, {})
    low, high = _quantile_interval(native, 0.9, t.confidence)
    hours = _hours(
        window,
        counts=lambda cohort: cohort.histogram.total >= t.min_hourly_requests,
        above=lambda cohort: cohort.ttfb(0.9) > t.nogo_p90_ms,
    )
    figures = {
        "p90_ms": _ms(p90),
        "interval_ms": [_ms(low), _ms(high)],
        "confidence": t.confidence,
        "go_max_p90_ms": t.go_max_p90_ms,
        "nogo_p90_ms": t.nogo_p90_ms,
        "min_hourly_requests": t.min_hourly_requests,
        **hours.figures("hours_with_enough_traffic"),
    }
    if p90 < t.go_max_p90_ms:
        return judged(PASS, GO, figures)
    if p90 > t.nogo_p90_ms and hours.sustained:
        return judged(FAIL, NO_GO, figures)
    return judged(BORDERLINE, HOLD, figures)


def _p90_vs_proxy(window: Window, t: Thresholds) -> Criterion:
    judged = partial(Criterion, "p90_vs_proxy", gettext_noop("Native p90 vs proxy p90"))
    native, proxy = window.figures.native, window.figures.proxy
    figures = {
        "ttfb_ms": {
            name: {f"p{round(q * 100)}": _ms(cohort.ttfb(q)) for q in (0.5, 0.9, 0.99)}
            for name, cohort in (("native", native), ("proxy", proxy))
        },
        "informational_targets_ms": {"p50": t.target_p50_ms, "p99": t.target_p99_ms},
        "fine_percent": t.p90_excess_fine_percent,
        "fail_percent": t.p90_excess_fail_percent,
    }
    native_p90, proxy_p90 = native.ttfb(0.9), proxy.ttfb(0.9)
    if native_p90 is None or not proxy_p90:
        # A proxy p90 of 0 ms (everything answered from cache) gives no ratio to judge by either.
        return judged(MISSING, HOLD, figures)
    excess = 100 * (native_p90 / proxy_p90 - 1)
    figures["excess_percent"] = _percent(excess)
    if excess <= t.p90_excess_fine_percent:
        return judged(PASS, GO, figures)
    if excess <= t.p90_excess_fail_percent:
        return judged(BORDERLINE, HOLD, figures)
    return judged(FAIL, HOLD, figures)


def _quantile_interval(cohort: CohortFigures, q: float, confidence: float) -> tuple[float, float]:
    """The values at the bounding ranks, read through the histogram (each within half a bin)."""
    n = cohort.histogram.total
    low_rank, high_rank = quantile_rank_interval(n, q, confidence)
    # quantile(rank / n) picks the ⌈rank / n · n⌉-th smallest value, which is the rank-th.
    return cohort.ttfb(low_rank / n), cohort.ttfb(high_rank / n)


# --- incidents, logs, attestations -------------------------------------------------------------


def _incidents(window: Window) -> Criterion:
    judged = partial(Criterion, "incidents", gettext_noop("Incidents"))
    for incident in window.incidents:
        if incident.kind not in INCIDENT_KINDS:
            raise ValueError(f"unknown incident kind {incident.kind!r}")
    figures = {"incidents": [incident.as_dict() for incident in window.incidents]}
    kinds = {incident.kind for incident in window.incidents}
    if kinds & {"emergency_stop", "rollback"}:
        return judged(FAIL, NO_GO, figures)
    if "critical_alert" in kinds:
        return judged(BORDERLINE, HOLD, figures)
    return judged(PASS, GO, figures)


def _logs(window: Window, t: Thresholds) -> Criterion:
    judged = partial(Criterion, "logs", gettext_noop("Logs delivering"))
    gaps = sorted(window.log_gaps, key=lambda gap: (-_minutes(gap), gap[0]))  # longest first
    long_gaps = [gap for gap in gaps if _minutes(gap) > t.max_log_gap_minutes]
    figures = {
        "max_log_gap_minutes": t.max_log_gap_minutes,
        "longest_gap_minutes": round(_minutes(gaps[0]), 1) if gaps else 0,
        "long_gaps": [
            {"start": _iso(start), "end": _iso(end), "minutes": round(_minutes((start, end)), 1)}
            for start, end in long_gaps
        ],
    }
    return judged(FAIL, HOLD, figures) if long_gaps else judged(PASS, GO, figures)


# The criteria a person attests, by kind, and their labels. The labels stay English in the
# frozen evidence (its digest must not depend on who reads it); pages and reports translate them
# when they show them, and evidence_words.py says what a yes and a no mean.
ATTESTED = {
    "upload_flow": gettext_noop("Upload flow"),
    "team_agrees": gettext_noop("Team consensus"),
}


def _attestation(window: Window, kind: str) -> Criterion:
    judged = partial(Criterion, kind, ATTESTED[kind])
    attestation = window.attestations.get(kind)
    if attestation is None:
        return judged(MISSING, HOLD, {})
    figures = {
        "value": attestation.value,
        "by": attestation.by,
        "at": _iso(attestation.at),
        "note": attestation.note,
    }
    return judged(PASS, GO, figures) if attestation.value else judged(FAIL, NO_GO, figures)


def _build(window: Window) -> Criterion:
    judged = partial(Criterion, "build", gettext_noop("Build under the window"), rule=TEAM)
    shifts = window.build_changes
    figures = {
        "build_changes": [
            {
                "at": _iso(shift.at),
                "old": shift.old,
                "new": shift.new,
                "resolution": shift.resolution,
                "by": shift.by,
                "reason": shift.reason,
            }
            for shift in shifts
        ]
    }
    if any(not shift.resolution for shift in shifts):
        # Restart the window from the new build, or keep it with a reason, before it can be GO.
        return judged(FAIL, HOLD, figures)
    return judged(PASS, GO, figures)


# --- helpers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hours:
    """The window's hours whose native traffic counts (the whole window as one if none does),
    and how many of them were above the NO-GO line."""

    counted: int
    above: int

    @property
    def sustained(self) -> bool:
        """Above the NO-GO line in at least half of the hours: not a passing spike."""
        return 2 * self.above >= self.counted

    def figures(self, counted_key: str) -> dict:
        return {counted_key: self.counted, "hours_above_nogo": self.above}


def _hours(window: Window, *, counts, above) -> _Hours:
    slices = [hour.native for hour in window.hourly if counts(hour.native)]
    slices = slices or [window.figures.native]
    return _Hours(len(slices), sum(1 for cohort in slices if above(cohort)))


def _percents(share_interval: tuple[float, float]) -> tuple[float, float]:
    return 100 * share_interval[0], 100 * share_interval[1]


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _minutes(gap: tuple[datetime, datetime]) -> float:
    return (gap[1] - gap[0]).total_seconds() / 60


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat() if moment.tzinfo else moment.isoformat()
