"""The usage chart's geometry: daily peak in use against the seat cap, and refusals.

Pure: takes the days of `seatd.usage.daily` and returns rectangles, lines and labels in SVG
user units; the template `_usage_chart.html` draws them as inline SVG, so the chart is
served as markup (readable without JavaScript, printable, and its numbers are also in the
table under it for screen readers). Peak bars and the cap share the left axis (seats);
refusals are a second, thinner bar per day on the same axis when they fit under it, or
scaled to the axis top with their count written on them when they would not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from seatd.usage import Day

WIDTH = 720
HEIGHT = 260
# Room for the axis labels: left for seat counts, bottom for dates.
LEFT, RIGHT, TOP, BOTTOM = 40, 12, 14, 34
# At most this many date labels under the axis, however many days are shown.
MAX_LABELS = 8


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    day: date


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    peaks: tuple[Bar, ...]
    refusals: tuple[Bar, ...]
    # Refusal bars taller than the seat axis are cut at its top; their count is printed.
    refusals_clipped: bool
    cap_y: float | None
    cap: int | None
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]


def _step(top: int) -> int:
    """A tick step giving at most ~5 integer ticks up to `top` (1, 2, 5, 10, 20, 50, ...)."""
    raw = max(1.0, top / 5)
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * magnitude >= raw:
            return int(m * magnitude)
    return int(10 * magnitude)  # pragma: no cover - the loop always returns


def layout(
    days: Sequence[Day],
    cap: int | None,
    *,
    date_label: Callable[[date], str] = date.isoformat,
    number: Callable[[int], str] = str,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """Place the bars, the cap line and the axis ticks of the chart of `days`."""
    left, right = float(LEFT), float(width - RIGHT)
    top, bottom = float(TOP), float(height - BOTTOM)
    peak_max = max((d.peak for d in days), default=0)
    # The axis reaches the cap too, so a quiet period still shows how far below the cap it is.
    axis_top = max(1, peak_max, cap or 0)
    step = _step(axis_top)
    axis_top = math.ceil(axis_top / step) * step

    def y(value: float) -> float:
        return bottom - (bottom - top) * min(value, axis_top) / axis_top

    slot = (right - left) / max(1, len(days))
    peak_width = slot * 0.6
    refusal_width = slot * 0.25
    peaks = []
    refusals = []
    for i, d in enumerate(days):
        x = left + i * slot + slot * 0.05
        peaks.append(Bar(x, y(d.peak), peak_width, bottom - y(d.peak), d.peak, d.day))
        if d.refusals:
            rx = x + peak_width + slot * 0.05
            refusals.append(
                Bar(rx, y(d.refusals), refusal_width, bottom - y(d.refusals), d.refusals, d.day)
            )
    every = max(1, math.ceil(len(days) / MAX_LABELS))
    x_ticks = tuple(
        Tick(left + i * slot + slot / 2, date_label(d.day))
        for i, d in enumerate(days)
        if i % every == 0
    )
    y_ticks = tuple(Tick(y(v), number(v)) for v in range(0, axis_top + 1, step))
    return Chart(
        width=width,
        height=height,
        plot_left=left,
        plot_right=right,
        plot_top=top,
        plot_bottom=bottom,
        peaks=tuple(peaks),
        refusals=tuple(refusals),
        refusals_clipped=any(b.value > axis_top for b in refusals),
        cap_y=y(cap) if cap is not None else None,
        cap=cap,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
    )
