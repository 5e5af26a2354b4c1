"""The one place that reads time.

Deadlines use the monotonic clock; wall time is for display and the journal only
(DESIGN.md invariant 4). Everything else receives a `Clock` and never reads time itself.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; meaningless across restarts."""
        ...

    def wall(self) -> datetime:
        """Current UTC time, timezone-aware."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)


class OffsetClock:
    """Another clock with its wall time shifted: for testing a clock set back. Never in
    production (config `dev.wall_clock_offset`)."""

    def __init__(self, base: Clock, offset_seconds: float) -> None:
        self.base = base
        self.offset = timedelta(seconds=offset_seconds)

    def monotonic(self) -> float:
        return self.base.monotonic()

    def wall(self) -> datetime:
        return self.base.wall() + self.offset
