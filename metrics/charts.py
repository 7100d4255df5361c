"""Server-rendered SVG line charts: the view computes coordinates, the template draws them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rollout.templatetags.times import in_words

WIDTH, HEIGHT = 560, 180
LEFT, RIGHT, TOP, BOTTOM = 46, 8, 10, 22
COLOURS = {
    "native": "#6f42c1",
    "proxy": "#1f6feb",
    "native p50": "#c8b3ef",
    "native p90": "#6f42c1",
    "native p99": "#3d1f7a",
    "proxy p90": "#1f6feb",
    "unknown": "#999999",
    "plan": "#1a7f37",
}


@dataclass
class Series:
    label: str
    values: list[float | None]
    colour: str = ""
    path: str = ""


@dataclass
class Threshold:
    value: float
    label: str
    colour: str = "#c62828"
    y: float = 0.0


@dataclass
class Chart:
    title: str
    unit: str
    series: list[Series]
    thresholds: list[Threshold] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    y_max: float = 1.0
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str, str]] = field(default_factory=list)
    empty: bool = True

    @property
    def plot_left(self):
        return LEFT

    @property
    def plot_right(self):
        return self.width - RIGHT

    @property
    def plot_bottom(self):
        return self.height - BOTTOM


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2f}".rstrip("0").rstrip(".")


def line_chart(
    title: str,
    unit: str,
    times: list[datetime],
    series: list[Series],
    thresholds: list[Threshold] = (),
    y_floor: float = 0.0,
) -> Chart:
    """Lay out ``series`` (one value per time step, None for no data) and horizontal
    ``thresholds`` on a shared y axis starting at 0."""
    chart = Chart(title=title, unit=unit, series=list(series), thresholds=list(thresholds))
    chart.times = times
    values = [v for s in series for v in s.values if v is not None]
    chart.empty = not values
    top = max(values + [t.value for t in thresholds] + [y_floor], default=1.0) or 1.0
    chart.y_max = top * 1.1
    plot_width = chart.plot_right - LEFT
    plot_height = chart.plot_bottom - TOP
    count = max(len(times), 1)

    def x(index: int) -> float:
        return LEFT + (plot_width * (index + 0.5) / count)

    def y(value: float) -> float:
        return TOP + plot_height * (1 - value / chart.y_max)

    for item in chart.series:
        item.colour = item.colour or COLOURS.get(item.label, "#444")
        parts, pen_down = [], False
        for index, value in enumerate(item.values):
            if value is None:
                pen_down = False
                continue
            parts.append(f"{'L' if pen_down else 'M'}{x(index):.1f},{y(value):.1f}")
            pen_down = True
        item.path = " ".join(parts)
    for threshold in chart.thresholds:
        threshold.y = round(y(threshold.value), 1)
    chart.y_ticks = [(round(y(v), 1), _fmt(v)) for v in (0, chart.y_max / 2, chart.y_max * 0.95)]
    if times:
        marks = sorted({0, count // 2, count - 1})
        anchors = {0: "start", count - 1: "end"}
        chart.x_ticks = [
            (
                round(x(i), 1),
                in_words(times[i], "minutes"),
                anchors.get(i, "middle"),
            )
            for i in marks
        ]
    return chart
