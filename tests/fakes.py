"""Hand-written fakes: a clock that only moves when told to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """Monotonic and wall time that move together, only through `advance` (never backwards)."""

    def __init__(self, start: datetime | None = None, mono: float = 1000.0) -> None:
        self._mono = mono
        self._wall = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> datetime:
        return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a FakeClock never goes backwards")
        self._mono += seconds
        self._wall += timedelta(seconds=seconds)
