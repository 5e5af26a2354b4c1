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

Stopping to grant is not stepping down. etcd loses its own raft leader when the member that
leads it dies, and answers no keepalive until the remaining members elect another: one to
two election timeouts (1 s each by default), longer on a loaded machine, so with the default
TTL of 3 s the proof can run out for one lost member. The new raft leader then refreshes
every lease (`Promote`: each lives a full TTL plus an election timeout more), so the lease
is still alive, and the leader keeps asking for it, every `retry_interval` while it has no
proof. A keepalive on the SAME lease answered with TTL > 0, and the leader key read after it
still at this term's create revision and on this lease, prove nobody else led meanwhile: an
ended lease is never renewed (its id is not granted again), the key goes with it, and a key
made again has a new create revision. So the leader grants again from that proof. It steps
down when etcd says the lease or the key is gone, or when etcd has given no proof for
`patience` (two TTLs) past the lease's proven end. The patience is liveness only (nothing
is granted without a proof, however long the wait), so it errs long: an etcd election
takes one to two election timeouts and a split vote starts another (measured here with 2 s
election timeouts: raft leader gone up to 5.8 s), while only quorum lost, or this
instance cut off from etcd, lasts longer; then a standby leads once the lease expires.

A paused process (SIGSTOP, a frozen VM) resumes with its monotonic clock far ahead, so the
very first check after the pause already says no: nothing is granted or renewed on a stale
belief, whatever ran first when the loop resumed; its next keepalive finds the lease ended
(or, paused less than the lease's life, proves it again).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Renewals per TTL, and the share of a renewal interval kept as the margin.
RENEWALS_PER_TTL = 4
MARGIN_OF_INTERVAL = 0.5
# Retries per renewal interval while the lease has no proof (etcd electing its raft leader
# answers "no leader" at once: the first keepalive after the election is not left waiting).
RETRIES_PER_INTERVAL = 4
# TTLs past the lease's proven end that a leader without a proof still asks etcd for it.
PATIENCE_TTLS = 2


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    ttl: float

    @property
    def renew_interval(self) -> float:
        return self.ttl / RENEWALS_PER_TTL

    @property
    def margin(self) -> float:
        return self.renew_interval * MARGIN_OF_INTERVAL

    @property
    def retry_interval(self) -> float:
        return self.renew_interval / RETRIES_PER_INTERVAL

    @property
    def patience(self) -> float:
        """How long past the lease's proven end the leader still asks etcd for it."""
        return self.ttl * PATIENCE_TTLS


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

    def keeping(self, now: float) -> bool:
        """Whether to go on asking etcd for the lease (granting or not) rather than step down."""
        return now < self.proven_until + self.timing.patience

    def next_renewal(self, sent_at: float, proved: bool) -> float:
        """When to send the next keepalive after the one sent at `sent_at`: a renewal interval
        later once it proved the lease, a retry interval later when it did not."""
        timing = self.timing
        return sent_at + (timing.renew_interval if proved else timing.retry_interval)

    def lost(self) -> None:
        """Stepped down, or etcd said the lease is gone: nothing is proven any more."""
        self.proven_until = -math.inf
