"""Bounds that keep one workstation (or one host posing as many) from wearing the daemon down.

Pure, like the arbiter: no I/O, no asyncio, no clock of its own; every method that needs
time takes `now` (monotonic seconds), so tests drive them with a fake clock. A rate-limiting
library would read the system clock itself, which DESIGN.md invariant 4 rules out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass

# A keepalive stream may send pings at up to four times its agreed rate, with a burst of
# eight: far above what the client library does (one per interval), far below a flood.
PINGS_PER_INTERVAL = 4.0
PING_BURST = 8.0


@dataclass(slots=True)
class TokenBucket:
    """Up to `burst` tokens, refilled at `rate` per second; each call spends one. The rate
    and burst are given at each call (they follow a reloaded configuration); the bucket only
    keeps its level and when it was last seen. Hand-written: the rate-limit libraries read
    their own clock, and here `now` is given."""

    tokens: float
    at: float

    @classmethod
    def full(cls, burst: float, now: float) -> TokenBucket:
        return cls(burst, now)

    def level(self, now: float, rate: float, burst: float) -> float:
        """The tokens there are at `now`."""
        return min(burst, self.tokens + max(0.0, now - self.at) * rate)

    def take(self, now: float, rate: float, burst: float) -> bool:
        """Spend one token; False (and nothing spent) when the bucket holds less than one."""
        self.tokens, self.at = self.level(now, rate, burst), now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def wait(self, now: float, rate: float, burst: float) -> float:
        """Seconds until one token is there (0 when it is there now)."""
        return max(0.0, 1.0 - self.level(now, rate, burst)) / rate


def ping_rate(interval: float) -> float:
    """Pings per second a stream may keep up with a keepalive `interval`."""
    return PINGS_PER_INTERVAL / interval


class PeerLimits:
    """A token bucket per peer for refused and denied calls: `burst` at once, then
    `per_second`. Only peers that were refused lately have a bucket (at most `max_peers`;
    past that the least recently refused is forgotten, which only ever lets a call through)."""

    def __init__(self, burst: int, per_second: float, max_peers: int = 10_000) -> None:
        self.burst = burst
        self.per_second = per_second
        self.max_peers = max_peers
        self._buckets: dict[Hashable, TokenBucket] = {}

    def retry_after(self, peer: Hashable, now: float) -> float:
        """0 when `peer` may make a call that could be refused; else the seconds to wait."""
        bucket = self._buckets.get(peer)
        return 0.0 if bucket is None else bucket.wait(now, self.per_second, self.burst)

    def refused(self, peer: Hashable, now: float) -> None:
        """A call from `peer` was refused or denied: it costs one token."""
        bucket = self._buckets.pop(peer, None) or TokenBucket.full(self.burst, now)
        bucket.take(now, self.per_second, self.burst)
        self._buckets[peer] = bucket  # re-inserted last: the dict is in order of refusal
        if len(self._buckets) > self.max_peers:
            del self._buckets[next(iter(self._buckets))]


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
