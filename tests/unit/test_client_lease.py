"""The workstation's lease state machine, driven by a fake clock."""

from __future__ import annotations

import random

import pytest
from seatclient.events import SeatState, StateChanged
from seatclient.lease import Backoff, Lease, Terms

TERMS = Terms(ttl=30, keepalive_interval=10, reattach_grace=10)


def test_lease_counts_from_the_send_time() -> None:
    """Chubby's rule: a renewal answered late still counts from when it was sent."""
    lease = Lease(TERMS, granted_sent_at=100)
    seq = lease.ping_sent(110)
    lease.acknowledged(seq)  # the answer arrives much later; it does not matter
    assert lease.assured_until == 140


def test_a_stale_answer_never_moves_the_lease_back() -> None:
    """An answer to an older ping does not shorten the lease a newer one gave."""
    lease = Lease(TERMS, 100)
    old, new = lease.ping_sent(110), lease.ping_sent(120)
    lease.acknowledged(new)
    lease.acknowledged(old)
    assert lease.assured_until == 150


def test_missed_renewal_puts_the_seat_in_jeopardy() -> None:
    """More than an interval and a half without an answer is JEOPARDY."""
    lease = Lease(TERMS, 100)
    lease.ping_sent(110)
    assert lease.check(115) is None
    assert lease.check(115.1) == StateChanged(SeatState.ACTIVE, SeatState.JEOPARDY)


def test_an_answer_brings_the_seat_back_to_active() -> None:
    """After jeopardy, an acknowledged renewal is ACTIVE again."""
    lease = Lease(TERMS, 100)
    lease.check(120)
    seq = lease.ping_sent(121)
    assert lease.acknowledged(seq) == StateChanged(SeatState.JEOPARDY, SeatState.ACTIVE)


def test_broken_stream_shortens_to_the_reattach_grace() -> None:
    """After a break the client believes its seat only until last renewal sent + grace."""
    lease = Lease(TERMS, 100)
    lease.acknowledged(lease.ping_sent(110))
    change = lease.broken(115)
    assert change == StateChanged(SeatState.ACTIVE, SeatState.JEOPARDY)
    assert lease.assured_until == 120


def test_reattach_is_a_renewal() -> None:
    """A successful reattach makes the seat ACTIVE with a lease from the attach's send time."""
    lease = Lease(TERMS, 100)
    lease.broken(105)
    assert lease.attached(sent_at=107) == StateChanged(SeatState.JEOPARDY, SeatState.ACTIVE)
    assert lease.assured_until == 137


def test_client_never_declares_lost_by_itself() -> None:
    """Without the daemon's word the state stays JEOPARDY however long it lasts."""
    lease = Lease(TERMS, 100)
    lease.broken(101)
    for t in range(102, 10_000, 50):
        lease.check(t)
        assert lease.state is SeatState.JEOPARDY


@pytest.mark.parametrize("state", [SeatState.LOST, SeatState.EVICTED, SeatState.RELEASED])
def test_terminal_states_are_final(state: SeatState) -> None:
    """Once lost, evicted or released, nothing brings the seat back."""
    lease = Lease(TERMS, 100)
    lease.end(state)
    assert lease.attached(200) is None and lease.broken(201) is None
    assert lease.state is state


def test_backoff_is_bounded_and_jittered() -> None:
    """Delays grow exponentially up to the cap and are spread below the ceiling."""
    backoff = Backoff(base=0.2, cap=5.0, rng=random.Random(7))
    for attempt in range(40):
        ceiling = min(5.0, 0.2 * 2**attempt)
        delays = [backoff.delay(attempt) for _ in range(50)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling * 0.3
