"""The queue of acquires waiting for a seat at capacity: by priority, then first come first
served, bounded.

Pure, like the arbiter: no I/O, no asyncio, no clock of its own. The service keeps one
future per waiter and asks this queue who is next (`pop_first`) when a seat frees, and who
has waited long enough (`expire(now)`) when the clock says so, from one timer for the whole
queue rather than one per waiter.

Invariants:
1. Waiters are served by priority (the seat policy's, higher first), and within one priority
   in the order they joined; one that leaves (cancelled, expired) keeps nobody else from
   moving up.
2. The queue never holds more than `max_waiting` waiters, nor more than
   `max_waiting_per_peer` from one peer address: a flood of waits is refused at the door
   (QUEUE_FULL), it never grows memory or the cost of serving the queue.
3. Every operation is O(1) or O(log n) (times the number of distinct priorities, a handful)
   except `expire`, which walks the queue once per batch of expiries to tell each expired
   waiter the position it had reached.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from seatclient.contract import Reason

from seatd.errors import LimitExceeded
from seatd.limits import PeerCounts

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class QueueConfig:
    # Acquires waiting for a seat at once, from everyone and from one peer address (a
    # terminal server hosts many users behind one address). 0 means no bound.
    max_waiting: int = 1000
    max_waiting_per_peer: int = 100
    # Refused waits (queue full, address over its refusal budget) held at once until their
    # wait runs out (seatd.tarpit); beyond, refusals are answered at once.
    max_held: int = 2_000


@dataclass(slots=True)
class _Entry(Generic[T]):
    item: T
    peer: str
    until: float
    priority: int = 0


class WaitQueue(Generic[T]):
    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        # One lane per priority, each in arrival order; served from the highest lane.
        self._lanes: dict[int, OrderedDict[int, _Entry[T]]] = {}
        self._order: list[int] = []
        self._entries: dict[int, _Entry[T]] = {}
        self._deadlines: list[tuple[float, int]] = []
        self._peers = PeerCounts(config.max_waiting_per_peer, config.max_waiting)
        self._tickets = itertools.count(1)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[T]:
        """The waiters in the order they will be served."""
        return (entry.item for _, entry in self._walk())

    def items(self) -> Iterator[tuple[int, T]]:
        """(ticket, waiter) in the order they will be served."""
        return ((ticket, entry.item) for ticket, entry in self._walk())

    def _walk(self) -> Iterator[tuple[int, _Entry[T]]]:
        for priority in self._order:
            yield from self._lanes[priority].items()

    def reconfigure(self, config: QueueConfig) -> None:
        """New bounds apply to new waiters; nobody already waiting is turned away."""
        self.config = config
        self._peers.per_peer = config.max_waiting_per_peer
        self._peers.total = config.max_waiting

    def join(self, item: T, peer: str, until: float, priority: int = 0) -> tuple[int, int]:
        """Queue `item` until `until`, behind everyone of its priority or higher; returns its
        ticket and its position (1 = next). Raises LimitExceeded (QUEUE_FULL) and changes
        nothing when a bound is reached."""
        full = self._peers.full(peer)
        if full == "total":
            raise LimitExceeded(
                Reason.QUEUE_FULL,
                f"{len(self)} requests are already waiting for a seat, the most this server "
                "queues (queue.max_waiting): try again later",
            )
        if full == "peer":
            raise LimitExceeded(
                Reason.QUEUE_FULL,
                f"{self._peers.held(peer)} requests from {peer} are already waiting for a seat, "
                "the most one address may queue (queue.max_waiting_per_peer): try again later",
            )
        ticket = next(self._tickets)
        entry = _Entry(item, peer, until, priority)
        lane = self._lanes.get(priority)
        if lane is None:
            lane = self._lanes[priority] = OrderedDict()
            self._order = sorted(self._lanes, reverse=True)
        lane[ticket] = entry
        self._entries[ticket] = entry
        self._peers.add(peer)
        heapq.heappush(self._deadlines, (until, ticket))
        ahead = sum(len(self._lanes[p]) for p in self._order if p > priority)
        return ticket, ahead + len(lane)

    def pop_first(self) -> T | None:
        """The waiter to serve next, removed from the queue; None if nobody waits."""
        for ticket, entry in self._walk():
            self._remove(ticket, entry)
            self._trim()
            return entry.item
        return None

    def leave(self, ticket: int) -> bool:
        """Remove a waiter that gives up (or was served out of turn); False if it was no
        longer waiting."""
        entry = self._entries.get(ticket)
        if entry is None:
            return False
        self._remove(ticket, entry)
        self._trim()
        return True

    def _remove(self, ticket: int, entry: _Entry[T]) -> None:
        del self._entries[ticket]
        lane = self._lanes[entry.priority]
        del lane[ticket]
        if not lane:
            del self._lanes[entry.priority]
            self._order.remove(entry.priority)
        self._peers.remove(entry.peer)

    def next_deadline(self) -> float | None:
        self._trim()
        return self._deadlines[0][0] if self._deadlines else None

    def expire(self, now: float) -> list[tuple[T, int]]:
        """Remove every waiter whose time is up; each with the position it had reached."""
        due: set[int] = set()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, ticket = heapq.heappop(self._deadlines)
            if ticket in self._entries:
                due.add(ticket)
        if not due:
            return []
        expired: list[tuple[T, int]] = []
        for position, (ticket, entry) in enumerate(list(self._walk()), start=1):
            if ticket in due:
                expired.append((entry.item, position))
                if len(expired) == len(due):
                    break
        for ticket in due:
            self._remove(ticket, self._entries[ticket])
        return expired

    def _trim(self) -> None:
        """Drop deadlines of waiters already gone, so the heap stays as small as the queue."""
        while self._deadlines and self._deadlines[0][1] not in self._entries:
            heapq.heappop(self._deadlines)
        if len(self._deadlines) > 2 * len(self._entries) + 64:
            self._deadlines = [(u, t) for u, t in self._deadlines if t in self._entries]
            heapq.heapify(self._deadlines)
