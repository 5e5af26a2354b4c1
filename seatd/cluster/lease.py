"""How long a leader may go on arbitrating, from what etcd last confirmed (pure).

Theory of operation. The leader key is attached to an etcd lease of `ttl` seconds. etcd
starts a lease's countdown again when it handles a keepalive, which is after the leader sent
it, and etcd only ever lengthens a lease (an etcd leader change refreshes every lease); so a
keepalive sent at monotonic time `t` and answered with TTL `T` proves the lease, and the
leader key with it, lives until at least `t + T`. No other instance can hold the key before
then.

The leader renews every `renew_interval` (a quarter of the TTL) and arbitrates (grants,
renews workstations' leases, takes no-one's seat) only while `now < t + T - margin`. The
margin, half a renewal interval, is there for what the check cannot see: the difference
between this machine's clock rate and etcd's, and the moment between the check and the
answer leaving. With renewals every quarter TTL, two renewals in a row may go unanswered
and the third be late by half an interval before the leader stops: a slow etcd does not
make it flap, a lost etcd stops it `margin` seconds before anyone else can lead.

A paused process (SIGSTOP, a frozen VM) resumes with its monotonic clock far ahead, so the
very first check after the pause already says no: nothing is granted or renewed on a stale
belief, whatever ran first when the loop resumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Renewals per TTL, and the share of a renewal interval kept as the margin.
RENEWALS_PER_TTL = 4
MARGIN_OF_INTERVAL = 0.5


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    ttl: float

    @property
    def renew_interval(self) -> float:
        return self.ttl / RENEWALS_PER_TTL

    @property
    def margin(self) -> float:
        return self.renew_interval * MARGIN_OF_INTERVAL


class LeaderLease:
    """The leader's proven lease: `renewed` with each confirmed keepalive, asked `granting`
    before every decision that hands out or extends a seat."""

    def __init__(self, timing: LeaseTiming) -> None:
        self.timing = timing
        # Monotonic time until which etcd is proven to keep the lease; -inf: no lease.
        self.proven_until = -math.inf

    def renewed(self, sent_at: float, ttl: float) -> None:
        """etcd answered a grant or keepalive sent at `sent_at` with `ttl` seconds left. An
        answer with no time left (the lease is gone) proves nothing."""
        if ttl > 0:
            self.proven_until = max(self.proven_until, sent_at + ttl)

    def granting_until(self) -> float:
        return self.proven_until - self.timing.margin

    def granting(self, now: float) -> bool:
        return now < self.granting_until()

    def lost(self) -> None:
        """Stepped down, or etcd said the lease is gone: nothing is proven any more."""
        self.proven_until = -math.inf
