"""The usage chart's geometry (seatd.web.chart): bars, cap line and ticks from daily usage."""

from __future__ import annotations

from datetime import date, timedelta

from seatd.usage import Day
from seatd.web import chart

FIRST = date(2026, 11, 1)


def days(*peaks: int, refusals: tuple[int, ...] = ()) -> list[Day]:
    refused = list(refusals) + [0] * (len(peaks) - len(refusals))
    return [Day(FIRST + timedelta(days=i), p, float(p), refused[i], 0) for i, p in enumerate(peaks)]


def test_peak_bars_are_proportional_to_the_peak() -> None:
    """A day at twice another's peak has a bar twice as tall, both standing on the axis."""
    c = chart.layout(days(2, 4), cap=None)
    low, high = c.peaks
    assert high.height == 2 * low.height
    assert low.y + low.height == c.plot_bottom == high.y + high.height


def test_the_cap_line_sits_at_the_cap_on_the_seat_axis() -> None:
    """With a cap of 4 and peaks of 2, the axis reaches the cap and the cap line is at the top
    of a bar of height 4."""
    c = chart.layout(days(2, 4), cap=4)
    assert c.cap_y == c.peaks[1].y
    assert c.y_ticks[-1].label == "4"


def test_an_empty_period_draws_an_axis_and_no_bars() -> None:
    """No day at all: no bars, one tick at 0 and one at the top of a unit axis."""
    c = chart.layout([], cap=None)
    assert c.peaks == () and c.refusals == ()
    assert [t.label for t in c.y_ticks] == ["0", "1"]


def test_refusals_get_a_bar_only_on_days_that_had_some() -> None:
    """Refusals are a second bar on the days that had them, right of that day's peak bar."""
    c = chart.layout(days(3, 3, 3, refusals=(0, 2, 0)), cap=3)
    (bar,) = c.refusals
    assert bar.day == FIRST + timedelta(days=1) and bar.value == 2
    assert bar.x > c.peaks[1].x + c.peaks[1].width


def test_refusals_beyond_the_axis_are_cut_at_its_top_and_flagged() -> None:
    """50 refusals against a 3-seat axis stop at the axis top; the chart says they were cut."""
    c = chart.layout(days(3, refusals=(50,)), cap=3)
    assert c.refusals[0].y == c.plot_top
    assert c.refusals_clipped


def test_a_long_period_labels_at_most_eight_days() -> None:
    """A year of days gets at most MAX_LABELS date labels, formatted by the caller."""
    c = chart.layout(days(*([1] * 365)), cap=2, date_label=lambda d: d.strftime("%d/%m"))
    assert 1 < len(c.x_ticks) <= chart.MAX_LABELS
    assert c.x_ticks[0].label == "01/11"


def test_ticks_step_in_round_numbers() -> None:
    """A 37-seat axis ticks every 10 up to 40."""
    c = chart.layout(days(37), cap=None)
    assert [t.label for t in c.y_ticks] == ["0", "10", "20", "30", "40"]
