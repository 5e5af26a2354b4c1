"""Bounds that keep one workstation (or one host posing as many) from wearing the daemon down.

Pure, like the arbiter: no I/O, no asyncio, no clock of its own; every method that needs
time takes `now` (monotonic seconds), so tests drive them with a fake clock. A rate-limiting
library would read the system clock itself, which DESIGN.md invariant 4 rules out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

# A keepalive stream may send pings at up to four times its agreed rate, with a burst of
# eight: far above what the client library does (one per interval), far below a flood.
PINGS_PER_INTERVAL = 4.0
PING_BURST = 8.0


@dataclass(slots=True)
class PingBudget:
    """A token bucket for one keepalive stream's application pings."""

    last: float
    tokens: float = PING_BURST

    def take(self, now: float, interval: float) -> bool:
        """Spend one ping; False when the stream pings faster than the bucket refills."""
        refill = (now - self.last) * PINGS_PER_INTERVAL / interval
        self.tokens = min(PING_BURST, self.tokens + max(0.0, refill))
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class PeerCounts:
    """How many of something each peer address holds, with a cap per peer and in total."""

    def __init__(self, per_peer: int, total: int) -> None:
        self.per_peer = per_peer
        self.total = total
        self._held: Counter[str] = Counter()
        self._sum = 0

    def __len__(self) -> int:
        return self._sum

    def held(self, peer: str) -> int:
        return self._held[peer]

    def full(self, peer: str) -> str | None:
        """Which cap (`"total"` or `"peer"`) a new one from `peer` would break, if any."""
        if self.total and self._sum >= self.total:
            return "total"
        if self.per_peer and self._held[peer] >= self.per_peer:
            return "peer"
        return None

    def add(self, peer: str) -> None:
        self._held[peer] += 1
        self._sum += 1

    def remove(self, peer: str) -> None:
        self._held[peer] -= 1
        self._sum -= 1
        if self._held[peer] <= 0:
            del self._held[peer]
