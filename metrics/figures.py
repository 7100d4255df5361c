"""Figures over a window, from the minute buckets: per-cohort counts, 5xx rate, TTFB
percentiles (merged histograms), cohort share, R2 upload errors — as totals and as series."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from integrations.histogram import Histogram

from .models import MinuteBucket, NativeSlice, WorkerMinute

COHORTS = ("native", "proxy")
QUANTILES = (0.5, 0.9, 0.99)


@dataclass
class CohortFigures:
    requests: int = 0
    errors_5xx: int = 0
    histogram: Histogram = field(default_factory=Histogram)

    def add(self, requests: int, errors_5xx: int, stored: list) -> None:
        self.requests += requests
        self.errors_5xx += errors_5xx
        self.histogram.merge_bytes(stored)

    @property
    def error_percent(self) -> float | None:
        return 100 * self.errors_5xx / self.requests if self.requests else None

    def ttfb(self, q: float) -> float | None:
        return self.histogram.quantile(q)

    @property
    def p50(self):
        return self.ttfb(0.5)

    @property
    def p90(self):
        return self.ttfb(0.9)

    @property
    def p99(self):
        return self.ttfb(0.99)

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "errors_5xx": self.errors_5xx,
            "error_percent": _round(self.error_percent, 3),
            "ttfb_ms": {f"p{round(q * 100)}": _round(self.ttfb(q), 1) for q in QUANTILES},
        }


@dataclass
class Figures:
    """Everything the panels and the rules read about one stretch of time."""

    start: datetime
    end: datetime
    cohorts: dict[str, CohortFigures] = field(
        default_factory=lambda: {cohort: CohortFigures() for cohort in COHORTS}
    )
    unknown_requests: int = 0
    upload_errors: int = 0
    worker_events: int = 0

    @property
    def native(self) -> CohortFigures:
        return self.cohorts["native"]

    @property
    def proxy(self) -> CohortFigures:
        return self.cohorts["proxy"]

    @property
    def requests(self) -> int:
        """Requests of either cohort (those without a readable X-Pix-Canary are apart)."""
        return self.native.requests + self.proxy.requests

    @property
    def native_share(self) -> float | None:
        return 100 * self.native.requests / self.requests if self.requests else None

    def as_dict(self) -> dict:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "requests": self.requests,
            "unknown_cohort_requests": self.unknown_requests,
            "native_share_percent": _round(self.native_share, 3),
            "r2_upload_errors": self.upload_errors,
            "cohorts": {name: figures.as_dict() for name, figures in self.cohorts.items()},
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def load_minutes(environment_id: int, start: datetime, end: datetime):
    """Bucket rows and upload errors per minute in [start, end), keyed by minute."""
    cells: dict[datetime, dict[str, tuple[int, int, list]]] = {}
    rows = MinuteBucket.objects.filter(
        environment_id=environment_id, minute__gte=start, minute__lt=end
    ).values_list("minute", "cohort", "requests", "errors_5xx", "ttfb_histogram")
    for minute, cohort, requests, errors, stored in rows.iterator(chunk_size=2000):
        cells.setdefault(minute, {})[cohort] = (requests, errors, stored)
    workers = dict(
        WorkerMinute.objects.filter(
            environment_id=environment_id, minute__gte=start, minute__lt=end
        ).values_list("minute", "upload_errors")
    )
    return cells, workers


def load_native_slices(environment_id: int, start: datetime, end: datetime):
    """The native cohort's (requests, 5xx) per slice of seconds in [start, end), by its start."""
    rows = NativeSlice.objects.filter(
        environment_id=environment_id, start__gte=start, start__lt=end
    ).values_list("start", "requests", "errors_5xx")
    return {start: (requests, errors) for start, requests, errors in rows}


def figures_from(cells, workers, start: datetime, end: datetime) -> Figures:
    figures = Figures(start=start, end=end)
    for minute, by_cohort in cells.items():
        if not start <= minute < end:
            continue
        for cohort, (requests, errors, stored) in by_cohort.items():
            if cohort in figures.cohorts:
                figures.cohorts[cohort].add(requests, errors, stored)
            else:
                figures.unknown_requests += requests
    figures.upload_errors = sum(count for minute, count in workers.items() if start <= minute < end)
    return figures


def window_figures(environment_id: int, start: datetime, end: datetime) -> Figures:
    cells, workers = load_minutes(environment_id, start, end)
    return figures_from(cells, workers, start, end)


def series(environment_id: int, start: datetime, end: datetime, points: int = 60):
    """The window cut into ``points`` steps of whole minutes, with the figures of each."""
    start, end = floor_minute(start), floor_minute(end)
    minutes = max(1, int((end - start).total_seconds() // 60))
    step = timedelta(minutes=max(1, -(-minutes // points)))
    cells, workers = load_minutes(environment_id, start, end)
    return split(cells, workers, start, end, step), step


def split(cells, workers, start: datetime, end: datetime, step: timedelta) -> list[Figures]:
    """[start, end) cut into steps, each minute's buckets merged into its step once."""
    steps = []
    moment = start
    while moment < end:
        steps.append(Figures(start=moment, end=min(moment + step, end)))
        moment += step
    for minute, by_cohort in cells.items():
        if not start <= minute < end:
            continue
        figures = steps[int((minute - start) / step)]
        for cohort, (requests, errors, stored) in by_cohort.items():
            if cohort in figures.cohorts:
                figures.cohorts[cohort].add(requests, errors, stored)
            else:
                figures.unknown_requests += requests
    for minute, count in workers.items():
        if start <= minute < end:
            steps[int((minute - start) / step)].upload_errors += count
    return steps


def combined(parts: list[Figures], start: datetime, end: datetime) -> Figures:
    """The figures of consecutive steps as one (histograms merged bin by bin, not re-read)."""
    total = Figures(start=start, end=end)
    for part in parts:
        for name, cohort in part.cohorts.items():
            target = total.cohorts[name]
            target.requests += cohort.requests
            target.errors_5xx += cohort.errors_5xx
            target.histogram.merge(cohort.histogram)
        total.unknown_requests += part.unknown_requests
        total.upload_errors += part.upload_errors
    return total
