"""The one place where decision -> durable commit -> acknowledgement happens.

All decisions run on the event loop, synchronously from the arbiter's call to the commit
submission, so the loop itself is the lock: no other request interleaves between a decision
and its place in the commit order. A caller is answered only after the transaction holding
its decision has committed (DESIGN.md invariant 3). Events for a session's workstation
(eviction, draining) are pushed to its keepalive stream only after the commit.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from seatclient.contract import Reason

from seatd import auth
from seatd.arbiter import Arbiter, Takeover, TakeoverPolicy
from seatd.capacity import ADVICE
from seatd.clock import Clock
from seatd.committer import Committer
from seatd.entitlement import Entitlement, LicenceView
from seatd.errors import (
    Draining,
    InvalidArgument,
    LicenceRejected,
    LimitExceeded,
    RateLimited,
    SeatdError,
    SeatsExhausted,
    SessionEnded,
    StoreFull,
    Superseded,
    Unavailable,
)
from seatd.licence.book import LicenceBook, Transfer
from seatd.limits import PINGS_PER_INTERVAL, PingBudget
from seatd.model import (
    ActiveSeatsChanged,
    Actor,
    Denied,
    Ended,
    Ending,
    EndKind,
    Event,
    Grant,
    Granted,
    Holder,
    Instant,
    LicenceCleared,
    LicenceInstalled,
    LicenceStaged,
    LicenceTransferred,
    Reattached,
    Refused,
    Session,
    StoreProbe,
    TokenCreated,
    TokenRevoked,
    check_text,
)
from seatd.repeats import Noise, PeerLimits, RefusalConfig, Repeats
from seatd.store import Store
from seatd.waitqueue import QueueConfig, WaitQueue

log = structlog.get_logger("seatd")

# Who the daemon's own licence changes are journaled as.
SEATD = Actor("seatd", "owner")

# The longest a request may wait in the queue for a seat.
MAX_WAIT = 3600.0
# Expired sessions committed per transaction.
ENDINGS_PER_COMMIT = 100
# Notices waiting to be written on one keepalive stream: a workstation that stops reading
# its answers gets its stream closed rather than growing the daemon's memory.
OUTBOX_LIMIT = 64

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


@dataclass(frozen=True, slots=True)
class AcquireRequest:
    user_code: str
    user_name: str
    hostname: str
    client_version: str
    idempotency_key: str
    ip: str
    evict_session_id: int = 0
    evict_reason: str = ""
    # Seconds to wait in the queue at capacity; 0 refuses at once.
    wait: float = 0.0


@dataclass(frozen=True, slots=True)
class Pong:
    seq: int
    ttl: float


@dataclass(frozen=True, slots=True)
class EvictedNotice:
    ending: Ending


@dataclass(frozen=True, slots=True)
class DrainingNotice:
    reattach_after: float


@dataclass(frozen=True, slots=True)
class LicenceNotice:
    licence: LicenceView


Notice = Pong | EvictedNotice | DrainingNotice | LicenceNotice


@dataclass(frozen=True, slots=True)
class Acquired:
    session: Session
    # Position in the wait queue when the request joined it; 0 if a seat was free.
    queue_position: int = 0
    waited: float = 0.0


OnQueued = Callable[[int], Awaitable[None]]
# Told a waiter's new position each time it changes (WaitForSeat streams it).
OnMoved = Callable[[int], None]


@dataclass(eq=False, slots=True)
class _Waiter:
    holder: Holder
    key: str
    # Resolves to the grant and the future of its commit once a seat is handed over, or to
    # the queue position it had reached when its wait ran out.
    outcome: asyncio.Future[tuple[Grant, asyncio.Future[None]] | int]
    moved: OnMoved | None = None
    # The position it was last told.
    position: int = 0


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
            {"admin": 0, "takeover": 0},
        )


@dataclass(slots=True)
class Usage:
    """Usage since the last successful sync: what the seat count is bought for."""

    peak: int = 0
    refusals: int = 0

    def reset(self, in_use: int) -> None:
        self.peak, self.refusals = in_use, 0


class Stream:
    """One attached keepalive stream: an outbox the transport writes out in order."""

    def __init__(self, session_id: int, token: str, now: float) -> None:
        self.session_id = session_id
        self.token = token
        self.outbox: asyncio.Queue[Notice | None] = asyncio.Queue()
        self.error: SeatdError | None = None
        self.closed = False
        self.pings = PingBudget(now)
        # Set when the workstation broke a bound: the transport ends the stream at once,
        # without writing what is still queued.
        self.abandoned = False

    def push(self, notice: Notice) -> None:
        if self.abandoned:
            return
        if self.outbox.qsize() >= OUTBOX_LIMIT:
            self.abandon(
                LimitExceeded(
                    Reason.KEEPALIVE_BACKLOG,
                    f"{OUTBOX_LIMIT} keepalive answers are waiting to be read: the "
                    "workstation does not read its stream; reattach",
                )
            )
            return
        self.outbox.put_nowait(notice)

    def close(self, error: SeatdError | None = None) -> None:
        """End the stream after what is queued; with `error`, end it with that status. The
        first close decides: a superseded stream still says so after its own pings fail."""
        if self.closed:
            return
        self.closed = True
        self.error = error
        self.outbox.put_nowait(None)

    def abandon(self, error: SeatdError) -> None:
        """End the stream now with `error`, dropping what is queued."""
        log.warning("keepalive.abandoned", session_id=self.session_id, reason=error.reason)
        self.abandoned = True
        self.close(error)


def _consume(future: asyncio.Future[None]) -> None:
    """A journal write nobody awaits: a failure is already logged by the commit path."""
    if not future.cancelled():
        future.exception()


class SeatService:
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
        self._streams: dict[int, Stream] = {}
        self.queue: WaitQueue[_Waiter] = WaitQueue(queue or QueueConfig())
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

    # -- workstation calls ------------------------------------------------------------------

    async def acquire(
        self,
        req: AcquireRequest,
        on_queued: OnQueued | None = None,
        on_moved: OnMoved | None = None,
    ) -> Acquired:
        """Grant a seat; at capacity, refuse, or with `req.wait` queue for the next free seat
        (`on_queued` hears the position it joined at, `on_moved` every later change)."""
        if self.draining:
            raise Draining(self.arbiter.terms.keepalive_interval)
        wait = self.limits.retry_after(("seat", req.ip), self.clock.monotonic())
        if wait:
            self.counters.acquires["rate_limited"] += 1
            raise RateLimited(req.ip, wait)
        holder = Holder.checked(
            user_code=req.user_code,
            user_name=req.user_name,
            hostname=req.hostname,
            ip=req.ip,
            client_version=req.client_version,
        )
        if not 0 <= req.wait <= MAX_WAIT:
            raise InvalidArgument("wait", f"must be between 0 and {MAX_WAIT:g} seconds")
        if not self.arbiter.holds_key(req.idempotency_key):
            self._check_room()
        refusal = self.entitlement.grant_refusal()
        if refusal is not None:
            log.info("seat.refused", user_code=holder.user_code, reason=refusal.reason)
            await self._journal_refusal(holder, refusal.message)
            raise refusal
        takeover = (
            Takeover(req.evict_session_id, req.evict_reason, self.takeover)
            if req.evict_session_id
            else None
        )
        try:
            grant = self._grant(holder, req.idempotency_key, takeover)
        except SeatsExhausted as refused:
            refused.licence = self.entitlement.view()
            self.usage.refusals += 1
            self.counters.acquires["refused" if req.wait <= 0 else "queued"] += 1
            if req.wait <= 0 or takeover is not None:
                await self._journal_refusal(holder, "all connections in use")
            log.info(
                "seat.refused",
                user_code=holder.user_code,
                hostname=holder.hostname,
                cap=refused.cap,
                in_use=refused.in_use,
                waiting=len(self.queue),
            )
            if req.wait <= 0 or takeover is not None:
                raise
            return await self._wait(holder, req, on_queued, on_moved)
        await self._commit(grant.events)
        if grant.events:
            self.counters.acquires["granted"] += 1
            self.counters.evictions["takeover"] += len(grant.events) - 1
        return Acquired(grant.session)

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

    async def _wait(
        self,
        holder: Holder,
        req: AcquireRequest,
        on_queued: OnQueued | None,
        on_moved: OnMoved | None,
    ) -> Acquired:
        """Queue behind earlier waiters; `_serve_queue` hands seats out in arrival order."""
        outcome = asyncio.get_running_loop().create_future()
        waiter = _Waiter(holder, req.idempotency_key, outcome, on_moved)
        started = self.clock.monotonic()
        try:
            ticket, joined_at = self.queue.join(waiter, req.ip, started + req.wait)
        except LimitExceeded:
            self.counters.acquires["queue_full"] += 1
            # A host that keeps knocking on a full queue is rate-limited like any refused one.
            self.limits.refused(("seat", req.ip), started)
            raise
        waiter.position = joined_at
        self._arm_expiry()
        log.info("seat.queued", user_code=holder.user_code, position=joined_at, wait=req.wait)
        try:
            if on_queued is not None:
                await on_queued(joined_at)
            result = await waiter.outcome
        finally:
            if self.queue.leave(ticket):
                self._tell_positions()
        if isinstance(result, int):
            await self._journal_refusal(holder, "no connection freed while waiting")
            raise self._exhausted(queue_position=result)
        grant, committed = result
        await self._settle(grant.events, committed)
        return Acquired(grant.session, joined_at, self.clock.monotonic() - started)

    def expire_waiters(self) -> int:
        """Answer every waiter whose wait has run out (the queue's timer, and the reaper)."""
        if self._expiry is not None:
            self._expiry.cancel()  # re-armed below for the next deadline: one timer at most
            self._expiry = None
        expired = self.queue.expire(self.clock.monotonic())
        for waiter, position in expired:
            if not waiter.outcome.done():
                waiter.outcome.set_result(position)
        if expired:
            self._tell_positions()
        self._arm_expiry()
        return len(expired)

    def _arm_expiry(self) -> None:
        deadline = self.queue.next_deadline()
        if deadline is None or (self._expiry is not None and self._expiry_at <= deadline):
            return
        if self._expiry is not None:
            self._expiry.cancel()
        delay = max(0.0, deadline - self.clock.monotonic())
        self._expiry = asyncio.get_running_loop().call_later(delay, self.expire_waiters)
        self._expiry_at = deadline

    def _tell_positions(self) -> None:
        """Tell the waiters that asked for it their new position (the queue is bounded)."""
        for position, waiter in enumerate(self.queue, start=1):
            if waiter.moved is not None and waiter.position != position:
                waiter.position = position
                waiter.moved(position)

    def _serve_queue(self) -> None:
        """Hand every free seat to the waiters, first come first served. Runs synchronously
        right after each decision that may free a seat, so nobody can slip in between."""
        cap = self.entitlement.seat_cap()
        if not self.store.capacity.grants_ok:
            return  # the waiters keep waiting (or time out) until there is room again
        served = 0
        while cap is None or self.arbiter.in_use < cap:
            waiter = self.queue.pop_first()
            if waiter is None:
                break
            served += 1
            if waiter.outcome.done():  # cancelled: its caller is gone
                continue
            try:
                grant = self._grant(waiter.holder, waiter.key, None)
            except SeatdError as exc:
                waiter.outcome.set_exception(exc)
                continue
            waiter.outcome.set_result((grant, self.committer.submit(grant.events)))
        if served:
            self._tell_positions()

    def _exhausted(self, queue_position: int = 0) -> SeatsExhausted:
        refused = SeatsExhausted(
            self.entitlement.seat_cap() or 0,
            self.arbiter.in_use,
            self.arbiter.sessions(),
            self.arbiter.terms.keepalive_interval,
            queue_position=queue_position,
        )
        refused.licence = self.entitlement.view()
        return refused

    @property
    def waiting(self) -> int:
        return len(self.queue)

    async def release(self, session_id: int, token: str) -> bool:
        ended = self.arbiter.release(session_id, token, self.now())
        if ended is None:
            await self.committer.submit(())
            return False
        await self._commit((ended,))
        self.counters.releases += 1
        return True

    def attach(self, session_id: int, token: str) -> tuple[Session, Stream]:
        """Bind a new keepalive stream to the session; an older stream is superseded."""
        # The token is checked before anything about the session is disclosed.
        before = self.arbiter.owned(session_id, token)
        session = self.arbiter.attach(session_id, token, self.now())
        if before.restored or before.streams:
            # Not a seat change: journaled in commit order, nobody waits on it.
            written = self._journal_noise(
                ("reattached", session_id),
                Reattached(session, before.restored, self.clock.wall()),
            )
            if written is not None:
                written.add_done_callback(_consume)
        stream = Stream(session_id, token, self.clock.monotonic())
        previous = self._streams.get(session_id)
        if previous is not None:
            previous.close(Superseded(session_id))
        self._streams[session_id] = stream
        log.info("seat.attached", session_id=session_id, user_code=session.holder.user_code)
        return session, stream

    def ping(self, stream: Stream, seq: int) -> None:
        if stream.abandoned:
            return
        if self._streams.get(stream.session_id) is not stream:
            stream.close()
            return
        interval = self.arbiter.terms.keepalive_interval
        if not stream.pings.take(self.clock.monotonic(), interval):
            stream.abandon(
                LimitExceeded(
                    Reason.PING_FLOOD,
                    f"keepalive pings arrive faster than {PINGS_PER_INTERVAL:g} per keepalive "
                    f"interval ({interval:g} s): reattach and ping once per interval",
                    retry_after=interval,
                )
            )
            return
        try:
            self.arbiter.renew(stream.session_id, stream.token, self.now())
        except SeatdError as gone:
            self._streams.pop(stream.session_id, None)
            stream.close(gone)
            return
        stream.push(Pong(seq, self.arbiter.terms.ttl))

    def detach(self, stream: Stream) -> None:
        """The stream ended: a live session keeps its seat only for the reattach grace."""
        if self._streams.get(stream.session_id) is not stream:
            return
        del self._streams[stream.session_id]
        session = self.arbiter.detach(stream.session_id, self.now())
        if session is not None:
            log.info(
                "seat.detached",
                session_id=session.id,
                user_code=session.holder.user_code,
                reattach_grace=self.arbiter.terms.reattach_grace,
            )

    # -- admin and housekeeping -------------------------------------------------------------

    async def evict(self, session_id: int, *, reason: str, by: str, claimed: str = "") -> Ending:
        ended = self.arbiter.evict(
            session_id, reason=reason, by=by, now=self.now(), claimed=claimed
        )
        await self._commit((ended,))
        self.counters.evictions["admin"] += 1
        return ended.ending

    async def reap(self) -> list[Ending]:
        self.expire_waiters()
        expired = self.arbiter.expire(self.now())
        # In bounded transactions: each fits in the store's reserve, and the pages one frees
        # serve the next, so a full store still frees every silent seat.
        for first in range(0, len(expired), ENDINGS_PER_COMMIT):
            chunk = expired[first : first + ENDINGS_PER_COMMIT]
            await self._commit(chunk)
            self.counters.expirations += len(chunk)
        return [e.ending for e in expired]

    async def check_store(self) -> None:
        """Commit a small write: raises StorageFailed when the store can no longer commit."""
        await self.committer.submit((StoreProbe(self.clock.wall()),))

    async def drain(self) -> None:
        """Stop granting, tell every workstation to reattach later, and commit what is queued."""
        self.draining = True
        after = self.arbiter.terms.keepalive_interval
        for stream in list(self._streams.values()):
            stream.push(DrainingNotice(after))
            stream.close()
        self._streams.clear()
        # Waiters hear it now, not when the server stops: they queue again after the restart.
        while (waiter := self.queue.pop_first()) is not None:
            if not waiter.outcome.done():
                waiter.outcome.set_exception(Draining(after))
        leftover = self.repeats.flush(self.clock.monotonic(), everything=True)
        if leftover and self.store.capacity.grants_ok:
            self.committer.submit(leftover).add_done_callback(_consume)
        await self.committer.drain()

    # -- the licence ---------------------------------------------------------------------------

    def _licences(self) -> LicenceBook:
        if self.book is None:
            raise Unavailable("this daemon runs without licence management")
        return self.book

    async def import_licence(self, text: str, *, source: str, actor: Actor) -> LicenceView:
        """Install a verified licence; a refused one leaves the licence in force untouched.

        The licence is in force from the decision on, before its commit, so that a grant
        decided meanwhile already uses its cap; a failed commit reloads the book (`_resync`).
        """
        book = self._licences()
        try:
            licence = book.check(text)
        except LicenceRejected as exc:
            log.warning("licence.rejected", reason=exc.reason, error=exc.message, source=source)
            raise
        if licence == book.licence:
            # The licence in force, imported again: installing it would only reset the active
            # seats and add a history line "L-X replaced L-X". Nothing changes, so nothing is
            # written and no workstation is told.
            log.info("licence.already_in_force", serial=licence.serial, source=source)
            return book.view()
        previous = book.licence.serial if book.licence else ""
        book.installed(licence)
        await self._commit_licence(
            LicenceInstalled(
                text,
                licence.serial,
                licence.seats,
                source,
                actor.name,
                self.clock.wall(),
                previous,
                actor.claimed,
                book.lineage.to_json() if book.lineage else "",
            )
        )
        log.info(
            "licence.installed",
            serial=licence.serial,
            seats=licence.seats,
            edition=licence.edition.name,
            source=source,
            by=actor.name,
        )
        self.licence_changed()
        return book.view()

    async def stage_licence(self, text: str, *, source: str, actor: Actor) -> None:
        """Keep a licence paid for a later period; `install_next` installs it on its day."""
        book = self._licences()
        licence, later = book.check_any(text)
        if not later:
            raise LicenceRejected(
                "LICENCE_ALREADY_STARTED",
                f"the licence started on {licence.valid_from}: install it instead",
            )
        book.staged(licence, text)
        await self._commit_licence(
            LicenceStaged(
                text, licence.serial, licence.valid_from, source, actor.name, self.clock.wall()
            )
        )
        log.info(
            "licence.staged",
            serial=licence.serial,
            valid_from=licence.valid_from.isoformat(),
            seats=licence.seats,
            source=source,
        )

    async def licence_transferred(self, to_base_id: str, at: datetime, *, actor: Actor) -> bool:
        """The cloud said the subscription moved to `to_base_id` at `at`: the licence in force
        ends. Nothing changes when there is no licence, or this was already recorded."""
        book = self._licences()
        if book.licence is None or (
            book.transferred is not None and book.transferred.serial == book.licence.serial
        ):
            return False
        serial = book.licence.serial
        book.moved(Transfer(to_base_id, at, serial))
        await self._commit_licence(
            LicenceTransferred(to_base_id, at, serial, actor.name, self.clock.wall())
        )
        log.warning(
            "licence.transferred",
            serial=serial,
            to_base_id=to_base_id,
            transferred_at=at.isoformat(),
            action="no new connections on this base id; open sessions continue",
        )
        self.licence_changed()
        return True

    async def install_next(self) -> bool:
        """Install the licence kept for a later period once its start date has come."""
        book = self._licences()
        text = book.due()
        if text is None:
            return False
        try:
            await self.import_licence(text, source="scheduled", actor=SEATD)
        except LicenceRejected:
            # Logged by import_licence; forgotten until a restart or the next sync.
            book.unstage()
            return False
        return True

    async def clear_licence(self, *, actor: Actor) -> LicenceView:
        book = self._licences()
        previous = book.licence.serial if book.licence else ""
        book.cleared()
        await self._commit_licence(
            LicenceCleared(actor.name, self.clock.wall(), previous, actor.claimed)
        )
        log.info("licence.cleared", previous_serial=previous, by=actor.name)
        self.licence_changed()
        return book.view()

    async def set_active_seats(self, seats: int, *, actor: Actor) -> LicenceView:
        """Lower or raise the active seats up to the purchased ones. Lowering evicts no one.

        The new cap holds from the decision on: a grant decided while its commit runs is
        already refused above it (a failed commit reloads the book, `_resync`).
        """
        book = self._licences()
        old = book.check_active(seats)
        book.active = seats
        await self._commit_licence(
            ActiveSeatsChanged(old, seats, actor.name, self.clock.wall(), actor.claimed)
        )
        log.info(
            "licence.active_seats_changed",
            old=old,
            new=seats,
            by=actor.name,
            in_use=self.arbiter.in_use,
        )
        self.licence_changed()
        return book.view()

    async def _commit_licence(self, event: Event) -> None:
        """Commit a licence change already applied to the book. A raised cap serves the queue
        at once, so the waiters' grants follow the change in the commit order."""
        committed = self.committer.submit((event,))
        self._serve_queue()
        await committed

    # -- admin tokens and refusals ------------------------------------------------------------

    async def create_token(self, name: str, role: str, *, actor: Actor) -> str:
        """A new admin token for `role`: returned once, only its hash is kept."""
        name = check_text("by", name)
        if role not in auth.ROLES:
            raise InvalidArgument("role", f"must be one of {', '.join(auth.ROLES)}")
        live = {t["name"] for t in self.store.tokens() if not t["revoked_at"]}
        if name in live or name in self._tokens_pending:
            raise InvalidArgument("name", f"a token named {name!r} already exists")
        self._check_room()
        # Reserved before the first await: a second call with this name is refused above.
        self._tokens_pending.add(name)
        token = auth.new_token()
        try:
            await self.committer.submit(
                (
                    TokenCreated(
                        name,
                        role,
                        auth.token_hash(token),
                        actor.name,
                        self.clock.wall(),
                        actor.claimed,
                    ),
                )
            )
        finally:
            self._tokens_pending.discard(name)
        log.info("admin.token_created", name=name, role=role, by=actor.name)
        return token

    async def revoke_token(self, name: str, *, actor: Actor) -> None:
        if not any(t["name"] == name and not t["revoked_at"] for t in self.store.tokens()):
            raise InvalidArgument("name", f"no live token named {name!r}")
        await self.committer.submit(
            (TokenRevoked(name, actor.name, self.clock.wall(), actor.claimed),)
        )
        log.info("admin.token_revoked", name=name, by=actor.name)

    def token_actor(self, token: str) -> Actor | None:
        digest = auth.token_hash(token)
        for t in self.store.tokens():
            if not t["revoked_at"] and hmac.compare_digest(t["hash"], digest):
                return Actor(f"token:{t['name']}", t["role"])
        return None

    async def journal_denied(self, actor: Actor, rpc: str, needed: str) -> None:
        """Journal a denied admin call (coalesced per actor); past the actor's burst of
        denials, raise RateLimited instead."""
        now = self.clock.monotonic()
        wait = self.limits.retry_after(("admin", actor.name), now)
        if wait:
            raise RateLimited(actor.name, wait)
        self.limits.refused(("admin", actor.name), now)
        log.warning("admin.denied", actor=actor.name, role=actor.role, rpc=rpc, needed=needed)
        written = self._journal_noise(
            ("denied", actor.name), Denied(actor.name, actor.role, rpc, needed, self.clock.wall())
        )
        if written is not None:
            await written

    def licence_changed(self) -> None:
        """Tell every workstation what is in force now; a raised cap serves the queue."""
        self._serve_queue()
        view = self.entitlement.view()
        self.licence_status = view.status
        for stream in self._streams.values():
            stream.push(LicenceNotice(view))

    # -- internals ---------------------------------------------------------------------------

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
            self.usage.peak = max(self.usage.peak, self.arbiter.in_use)
            s = event.session
            log.log(
                ROUTINE,
                "seat.granted",
                session_id=s.id,
                user_code=s.holder.user_code,
                hostname=s.holder.hostname,
                ip=s.holder.ip,
                in_use=self.arbiter.in_use,
            )
            return
        if not isinstance(event, Ended):
            return
        e = event.ending
        stream = self._streams.pop(e.session.id, None)
        fields: dict[str, object] = {"reason": e.reason, "by": e.by}
        if e.claimed:
            fields["claimed_user"] = e.claimed
        if e.by_claimed:
            fields["by_claimed"] = True
        if e.kind is EndKind.EXPIRED:
            fields["silent_for"] = round(e.silent_for, 3)
        log.log(
            ENDED_LEVEL.get(e.kind, logging.INFO),
            ENDED_EVENT[e.kind],
            session_id=e.session.id,
            user_code=e.session.holder.user_code,
            **fields,
        )
        if stream is None:
            return
        if e.kind is EndKind.EVICTED:
            # The event says why; old clients read it and take the clean end that follows.
            stream.push(EvictedNotice(e))
            stream.close()
        else:
            # Expired, or released by another holder of the token: the status says which.
            stream.close(SessionEnded(e))

    def _journal_grew(self) -> None:
        self.journal_changed.set()
        self.journal_changed = asyncio.Event()

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
