"""Daily usage from a synthetic journal, with fixed times (no clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from seatd.usage import daily

D0 = date(2026, 3, 2)


def at(day: int, hour: float) -> str:
    when = datetime(2026, 3, 2, tzinfo=UTC) + timedelta(days=day, hours=hour)
    return when.isoformat().replace("+00:00", "Z")


def entry(kind: str, sid: int, day: int, hour: float) -> dict[str, object]:
    return {"kind": kind, "session_id": sid, "at": at(day, hour)}


JOURNAL = [
    entry("granted", 1, 0, 8),  # AA 08:00-12:00 day 0
    entry("granted", 2, 0, 9),  # BB 09:00-17:00 day 0
    entry("refused", 0, 0, 10),
    entry("evicted", 1, 0, 12),
    entry("granted", 3, 0, 22),  # CC 22:00 day 0 - 02:00 day 1 (crosses midnight)
    entry("released", 2, 0, 17),
    entry("daemon_stopped", 0, 0, 23),
    entry("daemon_started", 0, 0, 23.5),
    entry("expired", 3, 1, 2),
    entry("granted", 4, 1, 9),  # DD still open at "now"
]


def test_peak_hours_refusals_and_evictions_per_day() -> None:
    """Day 0: two at once at most, 4 + 8 + 2 seat-hours, one refusal, one eviction."""
    days = daily(JOURNAL, first=D0, days=3, now=datetime(2026, 3, 3, 12, tzinfo=UTC), tz=UTC)
    d0, d1, d2 = days
    assert (d0.peak, d0.seat_hours, d0.refusals, d0.evictions) == (2, 14.0, 1, 1)
    assert (d1.peak, d1.seat_hours) == (1, 2.0 + 3.0)
    assert (d2.peak, d2.seat_hours) == (0, 0.0)


def test_a_coalesced_refusal_entry_counts_its_repeats() -> None:
    """A refused entry carrying `repeated` stands for that many refusals."""
    journal = [entry("refused", 0, 0, 10), {**entry("refused", 0, 0, 11), "repeated": 41}]
    [d0] = daily(journal, first=D0, days=1, now=datetime(2026, 3, 3, tzinfo=UTC), tz=UTC)
    assert d0.refusals == 42


def test_a_restart_ends_no_session() -> None:
    """daemon_stopped/started between a grant and its end do not cut the session."""
    days = daily(JOURNAL, first=D0, days=1, now=datetime(2026, 3, 5, tzinfo=UTC), tz=UTC)
    assert days[0].seat_hours == pytest.approx(14.0)


def test_days_follow_the_server_time_zone() -> None:
    """In UTC+3, CC's 22:00-02:00 UTC session falls on one local day (01:00-05:00)."""
    tz = timezone(timedelta(hours=3))
    days = daily(
        JOURNAL, first=date(2026, 3, 3), days=1, now=datetime(2026, 3, 3, 12, tzinfo=UTC), tz=tz
    )
    assert days[0].seat_hours == pytest.approx(4.0 + 3.0 + 0.0)


def test_session_open_before_the_window_counts_inside_it() -> None:
    """A session granted before the first day is counted from the window's start."""
    days = daily(
        [entry("granted", 9, -3, 0)],
        first=D0,
        days=1,
        now=datetime(2026, 3, 2, 6, tzinfo=UTC),
        tz=UTC,
    )
    assert (days[0].peak, days[0].seat_hours) == (1, 6.0)
