"""The one place where decision -> durable commit -> acknowledgement happens.

All decisions run on the event loop, synchronously from the arbiter's call to the commit
submission, so the loop itself is the lock: no other request interleaves between a decision
and its place in the commit order. A caller is answered only after the transaction holding
its decision has committed (DESIGN.md invariant 3). Events for a session's workstation
(eviction, draining) are pushed to its keepalive stream only after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import structlog

from seatd.arbiter import Arbiter, Takeover, TakeoverPolicy
from seatd.capacity import ADVICE
from seatd.clock import Clock
from seatd.committer import Committer
from seatd.entitlement import Entitlement
from seatd.errors import (
    NotLeader,
    SessionEnded,
    StoreFull,
)
from seatd.licence.book import LicenceBook
from seatd.limits import PeerLimits
from seatd.model import (
    Actor,
    Ended,
    Ending,
    EndKind,
    Event,
    Grant,
    Granted,
    Holder,
    Instant,
    Refused,
    StoreProbe,
)
from seatd.repeats import Noise, RefusalConfig, Repeats
from seatd.service.outbox import EvictedNotice, Stream
from seatd.service.requests import Waiter
from seatd.store import Store
from seatd.tarpit import Tarpit
from seatd.waitqueue import QueueConfig, WaitQueue

log = structlog.get_logger("seatd")

# Who the daemon's own licence changes are journaled as.
SEATD = Actor("seatd", "owner")

# Expired sessions committed per transaction.
ENDINGS_PER_COMMIT = 100

ENDED_EVENT = {
    EndKind.RELEASED: "seat.released",
    EndKind.EXPIRED: "seat.expired",
    EndKind.EVICTED: "seat.evicted",
}
# The ordinary traffic (a grant, a release) logs at debug: the journal holds each one and the
# metrics count them, and rendering a line per call costs more than arbitrating it. What an
# admin may need to act on (refusals, evictions, expiries) stays at info.
ROUTINE = logging.DEBUG
ENDED_LEVEL = {EndKind.RELEASED: ROUTINE}


@dataclass(slots=True)
class Counters:
    """Totals since start, for metrics."""

    acquires: dict[str, int]
    evictions: dict[str, int]
    expirations: int = 0
    releases: int = 0

    @classmethod
    def zero(cls) -> Counters:
        return cls(
            {"granted": 0, "refused": 0, "queued": 0, "rate_limited": 0, "queue_full": 0},
            {"admin": 0, "takeover": 0, "idle": 0},
        )


@dataclass(slots=True)
class Usage:
    """Usage since the last successful sync: what the seat count is bought for."""

    peak: int = 0
    refusals: int = 0

    def reset(self, in_use: int) -> None:
        self.peak, self.refusals = in_use, 0


def consume(future: asyncio.Future[None]) -> None:
    """A journal write nobody awaits: a failure is already logged by the commit path."""
    if not future.cancelled():
        future.exception()


class Core:
    """The state every part of the service shares, and the one path from decision to commit."""

    def __init__(
        self,
        *,
        arbiter: Arbiter,
        store: Store,
        clock: Clock,
        entitlement: Entitlement,
        takeover: TakeoverPolicy = TakeoverPolicy.ANYONE,
        book: LicenceBook | None = None,
        refusals: RefusalConfig | None = None,
        queue: QueueConfig | None = None,
    ) -> None:
        self.arbiter = arbiter
        self.store = store
        self.clock = clock
        self.entitlement = entitlement
        self.book = book
        self.takeover = takeover
        self.committer = Committer(store, self._resync, self._journal_grew)
        refusals = refusals or RefusalConfig()
        self.repeats = Repeats(refusals.window)
        self.limits = PeerLimits(refusals.burst, refusals.per_second)
        # Set (and replaced) after every commit: journal watchers wait on it.
        self.journal_changed = asyncio.Event()
        self.draining = False
        # Cluster mode: raises NotLeader unless this instance may arbitrate right now (asked
        # before every grant and renewal, so a paused or cut-off leader hands out nothing).
        self.leadership: Callable[[], None] | None = None
        # Monotonic time the reaper first found leadership refused (None: not paused).
        self._paused_since: float | None = None
        # A freed seat was kept from the waiters while leadership was refused: the reaper
        # serves them once it holds (the pause may end before a reaper tick sees it).
        self._queue_held = False
        self._streams: dict[int, Stream] = {}
        queue = queue or QueueConfig()
        self.queue: WaitQueue[Waiter] = WaitQueue(queue)
        # Refusals held back from callers that would only ask again at once (tarpit.py).
        self.tarpit = Tarpit(queue.max_held)
        # Sessions whose stream flooded pings: monotonic time until which a reattach is refused.
        self._penalties: dict[int, float] = {}
        # One timer for the whole queue, due at its earliest deadline (not one per waiter).
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_at = 0.0
        # Token names decided but not yet committed.
        self._tokens_pending: set[str] = set()
        self.usage = Usage()
        self.counters = Counters.zero()
        self.started_at = clock.wall()
        # The licence status last announced to workstations.
        self.licence_status = entitlement.view().status

    def now(self) -> Instant:
        return Instant(self.clock.monotonic(), self.clock.wall())

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    async def _journal_refusal(self, holder: Holder, reason: str) -> None:
        self.limits.refused(("seat", holder.ip), self.clock.monotonic())
        event = Refused(
            holder, reason, self.entitlement.seat_cap(), self.arbiter.in_use, self.clock.wall()
        )
        written = self._journal_noise(("refused", holder.ip), event)
        if written is not None:
            await written

    def _journal_noise(self, source: Hashable, event: Noise) -> asyncio.Future[None] | None:
        """Journal a refusal, denial or reattach, coalesced per source (`seatd.repeats`); at
        a full store nothing, its reserve being for what frees state."""
        events = self.repeats.observe(source, event, self.clock.monotonic())
        if not events or not self.store.capacity.grants_ok:
            return None
        return self.committer.submit(events)

    async def flush_repeats(self) -> None:
        """Journal the counts of the repeat windows that have closed."""
        events = self.repeats.flush(self.clock.monotonic())
        if events and self.store.capacity.grants_ok:
            await self.committer.submit(events)

    def set_refusal_limits(self, config: RefusalConfig) -> None:
        """A reloaded [refusals] section; open windows and buckets carry on."""
        self.repeats.window = config.window
        self.limits.burst, self.limits.per_second = config.burst, config.per_second

    def _check_room(self) -> None:
        """Refuse what only adds state once the store is past its grant limit."""
        room = self.store.capacity
        if not room.grants_ok:
            raise StoreFull(room.describe(), ADVICE, self.arbiter.terms.keepalive_interval)

    def _grant(self, holder: Holder, key: str, takeover: Takeover | None) -> Grant:
        return self.arbiter.grant(
            holder,
            key=key,
            token=secrets.token_urlsafe(24),
            now=self.now(),
            cap=self.entitlement.seat_cap(),
            takeover=takeover,
        )

    async def check_store(self) -> None:
        """Commit a small write: raises StorageFailed when the store can no longer commit."""
        await self.committer.submit((StoreProbe(self.clock.wall()),))

    async def _commit(self, events: Sequence[Event]) -> None:
        """Submit the events of a decision just made, serve the queue if a seat freed, and
        return once they are durable."""
        committed = self.committer.submit(events)
        if any(isinstance(e, Ended) for e in events):
            self._serve_queue()
        await self._settle(events, committed)

    async def _settle(self, events: Sequence[Event], committed: asyncio.Future[None]) -> None:
        await committed
        for event in events:
            self._announce(event)

    def _announce(self, event: Event) -> None:
        if isinstance(event, Granted):
            in_use = self.arbiter.in_use
            self.usage.peak = max(self.usage.peak, in_use)
            # Asked first: at the usual level nothing is logged, and gathering the fields of
            # a line that is dropped is most of this method's cost on the hot path.
            if log.is_enabled_for(ROUTINE):
                s = event.session
                log.log(
                    ROUTINE,
                    "seat.granted",
                    session_id=s.id,
                    user_code=s.holder.user_code,
                    hostname=s.holder.hostname,
                    ip=s.holder.ip,
                    in_use=in_use,
                )
            return
        if not isinstance(event, Ended):
            return
        e = event.ending
        stream = self._streams.pop(e.session.id, None)
        level = ENDED_LEVEL.get(e.kind, logging.INFO)
        if log.is_enabled_for(level):
            self._log_ending(e, level)
        if stream is None:
            return
        if e.kind is EndKind.EVICTED:
            # The event says why; old clients read it and take the clean end that follows.
            stream.push(EvictedNotice(e))
            stream.close()
        else:
            # Expired, or released by another holder of the token: the status says which.
            stream.close(SessionEnded(e))

    @staticmethod
    def _log_ending(e: Ending, level: int) -> None:
        fields: dict[str, object] = {"reason": e.reason, "by": e.by}
        if e.claimed:
            fields["claimed_user"] = e.claimed
        if e.by_claimed:
            fields["by_claimed"] = True
        if e.kind is EndKind.EXPIRED:
            fields["silent_for"] = round(e.silent_for, 3)
        log.log(
            level,
            ENDED_EVENT[e.kind],
            session_id=e.session.id,
            user_code=e.session.holder.user_code,
            **fields,
        )

    def _serve_queue(self) -> None:
        """Hand freed seats to the waiters: the queue's part (`seatd.service.queue`)."""
        raise NotImplementedError

    def _journal_grew(self) -> None:
        self.journal_changed.set()
        self.journal_changed = asyncio.Event()

    def _leading(self) -> bool:
        """Whether this instance may hand out a seat now (always, outside cluster mode)."""
        if self.leadership is None:
            return True
        try:
            self.leadership()
        except NotLeader:
            return False
        return True

    def _arbitrating(self) -> bool:
        """Whether the reaper may take seats now (cluster mode: while leadership holds).

        While it does not (the leader's etcd lease unproven, or the term over), every
        renewal is refused and no waiter is served, so a workstation's silence is this
        instance's doing: nothing expires, and when leadership holds again the time refused
        is added to the deadlines of the sessions it held back (`Arbiter.pardon`), then the
        seats freed meanwhile go to the waiters (also after a pause too short for a tick to
        see: `_serve_queue` says it held them back). The pause is seen within one reaper tick of
        its start, which is less than a session's TTL plus grace minus its keepalive
        interval, so no session falls due in that tick for want of a renewal refused in it.
        """
        now = self.clock.monotonic()
        if not self._leading():
            if self._paused_since is None:
                self._paused_since = now
            return False
        if self._paused_since is not None:
            since, self._paused_since = self._paused_since, None
            self.arbiter.pardon(since, now)
            log.info("seat.deadlines_extended", by=round(now - since, 3), reason="leader paused")
            self._queue_held = True
        if self._queue_held:
            self._queue_held = False
            self._serve_queue()
        return True

    def _resync(self) -> None:
        snapshot = self.store.load()
        self.arbiter.resync(snapshot.sessions, snapshot.next_id, self.now())
        if self.book is not None:
            # Licence changes apply at their decision: forget those that did not commit.
            self.book.load(
                snapshot.licence_text,
                snapshot.active_seats,
                snapshot.next_licence_text,
                snapshot.transferred,
                snapshot.lineage,
            )
        self._serve_queue()
        log.error(
            "store.commit_failed",
            in_use=self.arbiter.in_use,
            action="uncommitted decisions were refused; the seat table was reloaded",
        )
