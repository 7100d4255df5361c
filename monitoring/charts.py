"""Coordinates for the server-rendered SVG charts of the cohort panel (no front-end build)."""

from dataclasses import dataclass

from .models import CohortSample

BAR_WIDTH = 600
HISTORY_WIDTH = 600
HISTORY_HEIGHT = 100
HISTORY_PAD = 6
# Room on the left of the history chart for the 0 / 50 / 100 % labels.
HISTORY_LEFT = 34


@dataclass(frozen=True)
class SplitBar:
    """The latest sample's native share as a bar, its interval as a whisker, the plan as a
    marker; all in SVG units across ``BAR_WIDTH``."""

    share_x: float
    low_x: float | None
    high_x: float | None
    plan_x: float
    width: int = BAR_WIDTH


def _x(share: float) -> float:
    return round(max(0.0, min(1.0, share)) * BAR_WIDTH, 1)


def split_bar(sample: CohortSample | None, plan_percent: int) -> SplitBar | None:
    if sample is None or sample.native_share is None:
        return None
    return SplitBar(
        share_x=_x(sample.native_share),
        low_x=_x(sample.interval_low) if sample.interval_low is not None else None,
        high_x=_x(sample.interval_high) if sample.interval_high is not None else None,
        plan_x=_x(plan_percent / 100),
    )


@dataclass(frozen=True)
class HistoryPoint:
    x: float
    y: float
    low_y: float
    high_y: float
    plan_y: float
    verdict: str
    title: str


def _y(share: float) -> float:
    inner = HISTORY_HEIGHT - 2 * HISTORY_PAD
    return round(HISTORY_PAD + (1 - max(0.0, min(1.0, share))) * inner, 1)


def history(samples: list[CohortSample]) -> dict:
    """Samples oldest first as points (share, interval, plan) evenly spaced left to right."""
    judged = [s for s in samples if s.native_share is not None]
    if not judged:
        return {"points": [], "plan_path": "", "width": HISTORY_WIDTH, "height": HISTORY_HEIGHT}
    step = (HISTORY_WIDTH - HISTORY_LEFT - HISTORY_PAD) / max(1, len(judged) - 1)
    points = []
    for index, sample in enumerate(judged):
        plan = 0 if sample.emergency else (sample.expected_percent or 0)
        points.append(
            HistoryPoint(
                x=round(HISTORY_LEFT + index * step, 1),
                y=_y(sample.native_share),
                low_y=_y(sample.interval_high if sample.interval_high is not None else 1),
                high_y=_y(sample.interval_low if sample.interval_low is not None else 0),
                plan_y=_y(plan / 100),
                verdict=sample.verdict,
                title=(
                    f"{sample.created_at:%Y-%m-%d %H:%M} UTC: native {sample.native} of "
                    f"{sample.answered}, plan {plan}% — {sample.verdict}"
                ),
            )
        )
    plan_path = " ".join(f"{'M' if i == 0 else 'L'}{p.x},{p.plan_y}" for i, p in enumerate(points))
    return {
        "points": points,
        "plan_path": plan_path,
        "width": HISTORY_WIDTH,
        "height": HISTORY_HEIGHT,
        "left": HISTORY_LEFT - 4,
        "grid": [(label, _y(share)) for label, share in (("100%", 1), ("50%", 0.5), ("0%", 0))],
    }
