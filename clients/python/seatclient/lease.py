"""The client's own view of its lease: a pure state machine, driven by the caller's clock.

Chubby's rule: the client counts its lease from when a renewal was *sent*, never from when
the answer arrived, so it always believes its lease ends no later than the daemon does. When
the keepalive stream breaks, the daemon keeps the seat only `reattach_grace` after the break,
so the client shortens its belief to the last acknowledged renewal's send time plus that
grace. It never declares the seat LOST on its own: only the daemon can say so. While
renewals fail it reports JEOPARDY and keeps reattaching with exponential backoff and jitter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from seatclient.events import SeatState, StateChanged

TERMINAL = frozenset({SeatState.LOST, SeatState.EVICTED, SeatState.SUPERSEDED, SeatState.RELEASED})


@dataclass(frozen=True, slots=True)
class Terms:
    ttl: float
    keepalive_interval: float
    reattach_grace: float


@dataclass(slots=True)
class Backoff:
    """Full-jitter exponential backoff: attempt n waits uniform(0, min(cap, base * 2**n))."""

    base: float = 0.2
    cap: float = 5.0
    rng: random.Random = field(default_factory=random.Random)

    def ceiling(self, attempt: int, cap: float | None = None) -> float:
        return min(self.cap if cap is None else cap, self.base * 2.0 ** min(attempt, 30))

    def delay(self, attempt: int, cap: float | None = None) -> float:
        return self.rng.uniform(0.0, self.ceiling(attempt, cap))


class Lease:
    def __init__(self, terms: Terms, granted_sent_at: float) -> None:
        self.terms = terms
        self.state = SeatState.ACTIVE
        # The request that produced the grant was sent at `granted_sent_at`.
        self.renewed_sent_at = granted_sent_at
        self.assured_until = granted_sent_at + terms.ttl
        self._sent: dict[int, float] = {}
        self._seq = 0

    def ping_sent(self, now: float) -> int:
        """Record a renewal sent now; returns its sequence number."""
        self._seq += 1
        self._sent[self._seq] = now
        if len(self._sent) > 64:
            del self._sent[min(self._sent)]
        return self._seq

    def attached(self, sent_at: float) -> StateChanged | None:
        """The daemon accepted an attach sent at `sent_at`: a renewal."""
        return self._renewed(sent_at)

    def acknowledged(self, seq: int) -> StateChanged | None:
        """The daemon answered ping `seq`."""
        sent_at = self._sent.pop(seq, None)
        if sent_at is None:
            return None
        return self._renewed(sent_at)

    def _renewed(self, sent_at: float) -> StateChanged | None:
        if self.state in TERMINAL:
            return None
        if sent_at >= self.renewed_sent_at:
            self.renewed_sent_at = sent_at
            self.assured_until = max(self.assured_until, sent_at + self.terms.ttl)
        return self._move(SeatState.ACTIVE)

    def overdue(self, now: float) -> bool:
        """No renewal acknowledged for longer than one interval and a half."""
        return now - self.renewed_sent_at > self.terms.keepalive_interval * 1.5

    def check(self, now: float) -> StateChanged | None:
        """Called before each ping: an overdue renewal puts the seat in jeopardy."""
        if self.state is SeatState.ACTIVE and self.overdue(now):
            return self._move(SeatState.JEOPARDY)
        return None

    def broken(self, now: float) -> StateChanged | None:
        """The stream broke: the daemon now keeps the seat only for the reattach grace."""
        if self.state in TERMINAL:
            return None
        self.assured_until = min(
            self.assured_until, self.renewed_sent_at + self.terms.reattach_grace
        )
        self._sent.clear()
        return self._move(SeatState.JEOPARDY)

    def end(self, state: SeatState) -> StateChanged | None:
        """The daemon ended the lease (LOST, EVICTED, SUPERSEDED) or the application
        released it."""
        assert state in TERMINAL
        if self.state in TERMINAL:
            return None
        return self._move(state)

    def _move(self, new: SeatState) -> StateChanged | None:
        if new is self.state:
            return None
        old, self.state = self.state, new
        return StateChanged(old, new)
