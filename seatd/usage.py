"""Daily usage from the journal: how many connections does the company really need?

Pure: replays journal entries (granted opens a session; released, expired and evicted end
it; a restart ends nothing) and splits every session across the days it spans, in the
server's time zone. Per day: the peak of concurrent sessions, the seat-hours used, the
refusals at capacity and the evictions.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, TextIO

ENDS = frozenset({"released", "expired", "evicted"})
# A report's columns, as `Day.as_json` names them (CSV header and JSON keys).
COLUMNS = ("day", "peak_sessions", "seat_hours", "refusals", "evictions")


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    peak: int
    seat_hours: float
    refusals: int
    evictions: int

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "peak_sessions": self.peak,
            "seat_hours": round(self.seat_hours, 2),
            "refusals": self.refusals,
            "evictions": self.evictions,
        }


def _at(entry: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(entry["at"]).replace("Z", "+00:00"))


def daily(
    entries: Iterable[Mapping[str, Any]], *, first: date, days: int, now: datetime, tz: tzinfo
) -> list[Day]:
    """Usage for `days` days from `first` (in `tz`), sessions still open counted up to `now`."""
    edges = [datetime.combine(first + timedelta(days=i), time(), tz) for i in range(days + 1)]
    window_start, window_end = edges[0], min(edges[-1], now)
    open_at: dict[int, datetime] = {}
    intervals: list[tuple[datetime, datetime]] = []
    refusals = [0] * days
    evictions = [0] * days

    def day_index(when: datetime) -> int | None:
        i = (when.astimezone(tz).date() - first).days
        return i if 0 <= i < days else None

    for entry in entries:
        kind, at = entry.get("kind"), _at(entry)
        sid = int(entry.get("session_id") or 0)
        if kind == "granted":
            open_at[sid] = at
        elif kind in ENDS and sid in open_at:
            intervals.append((open_at.pop(sid), at))
        i = day_index(at)
        if i is not None and kind == "refused":
            refusals[i] += int(entry.get("repeated") or 1)
        if i is not None and kind == "evicted":
            evictions[i] += 1
    intervals += [(start, now) for start in open_at.values()]

    result = []
    for i in range(days):
        lo, hi = max(edges[i], window_start), min(edges[i + 1], window_end)
        hours = (
            sum(
                max(0.0, (min(end, hi) - max(start, lo)).total_seconds())
                for start, end in intervals
            )
            / 3600
        )
        # Concurrency changes only at session starts and ends: sweep them within the day.
        inside = [(s, e) for s, e in intervals if s < hi and e > lo]
        points = sorted({lo, *(s for s, _ in inside if s > lo)})
        peak = max((sum(1 for s, e in inside if s <= p < e) for p in points), default=0)
        result.append(Day(first + timedelta(days=i), peak, hours, refusals[i], evictions[i]))
    return result


def last_days(
    entries: Iterable[Mapping[str, Any]], *, days: int, now: datetime, utc_offset: int
) -> list[Day]:
    """The `days` days up to today, in the server's zone (its UTC offset in seconds)."""
    tz = timezone(timedelta(seconds=utc_offset))
    first = now.astimezone(tz).date() - timedelta(days=days - 1)
    return daily(entries, first=first, days=days, now=now, tz=tz)


def write_csv(rows: Iterable[Day], out: TextIO) -> None:
    """`rows` as CSV with a header (`seatctl report usage --csv`, the console's download)."""
    writer = csv.DictWriter(out, COLUMNS)
    writer.writeheader()
    writer.writerows(r.as_json() for r in rows)
