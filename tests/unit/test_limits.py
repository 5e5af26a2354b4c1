"""Per-stream and per-peer bounds, driven by `now`."""

from __future__ import annotations

from seatd.fds import RESERVE, connection_cap
from seatd.limits import PING_BURST, PeerCounts, PeerLimits, TokenBucket, ping_rate
from tests.fakes import FakeClock

RATE = ping_rate(10.0)


def test_pings_at_the_agreed_interval_are_always_allowed() -> None:
    """A workstation pinging once per interval never runs out of budget."""
    budget = TokenBucket.full(PING_BURST, 0.0)
    assert all(budget.take(now=10.0 * i, rate=RATE, burst=PING_BURST) for i in range(1, 1000))


def test_a_burst_beyond_the_budget_is_refused() -> None:
    """Pings sent back to back are allowed up to the burst, then refused."""
    budget = TokenBucket.full(PING_BURST, 0.0)
    allowed = [budget.take(now=0.0, rate=RATE, burst=PING_BURST) for _ in range(20)]
    assert allowed == [True] * int(PING_BURST) + [False] * (20 - int(PING_BURST))


def test_the_budget_refills_with_time() -> None:
    """After a burst, a quarter interval buys one more ping."""
    budget = TokenBucket.full(PING_BURST, 0.0)
    while budget.take(now=0.0, rate=RATE, burst=PING_BURST):
        pass
    assert not budget.take(now=2.0, rate=RATE, burst=PING_BURST)
    assert budget.take(now=2.5, rate=RATE, burst=PING_BURST)


def test_peer_counts_cap_each_peer_and_the_total() -> None:
    """full() names the cap a new one would break: the peer's own, or the total."""
    counts = PeerCounts(per_peer=2, total=3)
    counts.add("a")
    counts.add("a")
    assert counts.full("a") == "peer" and counts.full("b") is None
    counts.add("b")
    assert counts.full("c") == "total" and len(counts) == 3
    counts.remove("a")
    assert counts.full("a") is None and counts.held("a") == 1


def test_connection_cap_keeps_the_descriptor_reserve() -> None:
    """Workstation connections never eat into the descriptors kept for the admin socket."""
    assert connection_cap(20_000, 65_536) == 20_000
    assert connection_cap(20_000, 1024) == 1024 - RESERVE
    assert connection_cap(20_000, 64) == 1


def test_a_peer_is_limited_after_its_burst_of_refusals() -> None:
    """A peer refused `burst` times in a row must wait; the wait is what refills one token."""
    clock = FakeClock()
    limits = PeerLimits(burst=3, per_second=2.0)
    for _ in range(3):
        assert limits.retry_after("10.0.0.5", clock.monotonic()) == 0
        limits.refused("10.0.0.5", clock.monotonic())
    assert limits.retry_after("10.0.0.5", clock.monotonic()) == 0.5
    assert limits.retry_after("10.0.0.6", clock.monotonic()) == 0
    clock.advance(0.5)
    assert limits.retry_after("10.0.0.5", clock.monotonic()) == 0


def test_the_limit_remembers_a_bounded_number_of_peers() -> None:
    """Past max_peers the least recently refused peer is forgotten (and let through)."""
    clock = FakeClock()
    limits = PeerLimits(burst=1, per_second=1.0, max_peers=2)
    for peer in ("a", "b", "c"):
        limits.refused(peer, clock.monotonic())
    assert limits.retry_after("a", clock.monotonic()) == 0
    assert limits.retry_after("c", clock.monotonic()) == 1.0
