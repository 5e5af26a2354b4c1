"""The wait queue: first come first served, bounded in total and per peer, driven by `now`."""

from __future__ import annotations

import pytest

from seatd.errors import LimitExceeded
from seatd.waitqueue import QueueConfig, WaitQueue


def queue(max_waiting: int = 10, per_peer: int = 5) -> WaitQueue[str]:
    return WaitQueue(QueueConfig(max_waiting=max_waiting, max_waiting_per_peer=per_peer))


def drain(q: WaitQueue[str]) -> list[str]:
    served = []
    while (item := q.pop_first()) is not None:
        served.append(item)
    return served


def test_waiters_are_served_in_the_order_they_joined() -> None:
    """pop_first hands out waiters in arrival order, each with its position on joining."""
    q = queue()
    positions = [q.join(name, "10.0.0.1", 30.0)[1] for name in ("a", "b", "c")]
    assert positions == [1, 2, 3]
    assert drain(q) == ["a", "b", "c"]


def test_a_waiter_that_leaves_keeps_the_others_in_order() -> None:
    """Leaving from the middle removes only that waiter; leaving twice is harmless."""
    q = queue()
    q.join("a", "p", 30.0)
    ticket, _ = q.join("b", "p", 30.0)
    q.join("c", "p", 30.0)
    assert q.leave(ticket) and not q.leave(ticket)
    assert drain(q) == ["a", "c"]


def test_full_queue_refuses_and_changes_nothing() -> None:
    """Beyond max_waiting a join raises QUEUE_FULL and the queue is exactly as before."""
    q = queue(max_waiting=2, per_peer=0)
    q.join("a", "p1", 30.0)
    q.join("b", "p2", 30.0)
    with pytest.raises(LimitExceeded) as refused:
        q.join("c", "p3", 1.0)
    assert refused.value.reason == "QUEUE_FULL" and "queue.max_waiting" in refused.value.message
    assert len(q) == 2 and q.next_deadline() == 30.0
    assert drain(q) == ["a", "b"]


def test_one_peer_cannot_take_the_whole_queue() -> None:
    """Beyond max_waiting_per_peer one address is refused while another still gets in."""
    q = queue(max_waiting=10, per_peer=2)
    q.join("a", "flood", 30.0)
    q.join("b", "flood", 30.0)
    with pytest.raises(LimitExceeded, match="max_waiting_per_peer"):
        q.join("c", "flood", 30.0)
    assert q.join("d", "other", 30.0)[1] == 3
    q.pop_first()
    assert q.join("e", "flood", 30.0)[1] == 3


def test_expire_returns_the_waiters_whose_time_is_up_with_their_positions() -> None:
    """expire(now) removes exactly the waiters due by `now`, each with the position it had."""
    q = queue()
    q.join("a", "p", 30.0)
    q.join("b", "p", 5.0)
    q.join("c", "p", 60.0)
    q.join("d", "p", 5.0)
    assert q.expire(4.9) == []
    assert q.expire(5.0) == [("b", 2), ("d", 4)]
    assert q.next_deadline() == 30.0
    assert drain(q) == ["a", "c"]


def test_a_served_or_departed_waiter_never_expires() -> None:
    """Deadlines of waiters already served or gone are forgotten."""
    q = queue()
    q.join("a", "p", 5.0)
    ticket, _ = q.join("b", "p", 6.0)
    q.pop_first()
    q.leave(ticket)
    assert q.expire(100.0) == [] and q.next_deadline() is None


def test_lower_bounds_turn_nobody_away_who_is_already_waiting() -> None:
    """reconfigure applies new bounds to new waiters only."""
    q = queue(max_waiting=10, per_peer=0)
    for name in "abc":
        q.join(name, "p", 30.0)
    q.reconfigure(QueueConfig(max_waiting=1, max_waiting_per_peer=0))
    with pytest.raises(LimitExceeded):
        q.join("d", "p", 30.0)
    assert drain(q) == ["a", "b", "c"]
