"""A workstation's seat: granting, releasing, evicting, expiring, draining."""

from __future__ import annotations

import structlog

from seatd.arbiter import Takeover
from seatd.errors import (
    Draining,
    InvalidArgument,
    PolicyRefused,
    RateLimited,
    SeatsExhausted,
)
from seatd.model import (
    Ending,
    Holder,
)
from seatd.service.core import ENDINGS_PER_COMMIT, consume
from seatd.service.outbox import DrainingNotice
from seatd.service.policy import PolicyCalls
from seatd.service.requests import MAX_WAIT, Acquired, AcquireRequest, OnMoved, OnQueued

log = structlog.get_logger("seatd")


class SeatCalls(PolicyCalls):
    """Seats: grants at capacity or in the queue, releases, evictions, expiries, draining."""

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
        if self.leadership is not None:
            self.leadership()
        wait = self.limits.retry_after(("seat", req.ip), self.clock.monotonic())
        if wait:
            self.counters.acquires["rate_limited"] += 1
            await self._refuse_after_wait(req.wait, RateLimited(req.ip, wait))
        holder = Holder.stripped(
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
        except (SeatsExhausted, PolicyRefused) as refused:
            waits = req.wait > 0 and takeover is None
            fields: dict[str, object]
            if isinstance(refused, SeatsExhausted):
                refused.licence = self.entitlement.view()
                why = "all connections in use"
                fields = {"cap": refused.cap, "in_use": refused.in_use}
            else:
                # The rule that decided, in the journal and the log as on the wire.
                waits = waits and refused.waitable
                why = f"{refused.reason}: {refused.message}"
                fields = {"reason": refused.reason, "rule": refused.rule, "group": refused.group}
            self.usage.refusals += 1
            self.counters.acquires["queued" if waits else "refused"] += 1
            if not waits:
                await self._journal_refusal(holder, why)
            log.info(
                "seat.refused",
                user_code=holder.user_code,
                hostname=holder.hostname,
                waiting=len(self.queue),
                **fields,
            )
            if not waits:
                raise
            return await self._wait(holder, req, on_queued, on_moved)
        await self._commit(grant.events)
        if grant.events:
            self.counters.acquires["granted"] += 1
            self.counters.evictions["takeover"] += len(grant.events) - 1
        return Acquired(grant.session)

    async def release(self, session_id: int, token: str) -> bool:
        ended = self.arbiter.release(session_id, token, self.now())
        if ended is None:
            await self.committer.submit(())
            return False
        await self._commit((ended,))
        self.counters.releases += 1
        return True

    # Admin and housekeeping.

    async def evict(self, session_id: int, *, reason: str, by: str, claimed: str = "") -> Ending:
        ended = self.arbiter.evict(
            session_id, reason=reason, by=by, now=self.now(), claimed=claimed
        )
        await self._commit((ended,))
        self.counters.evictions["admin"] += 1
        return ended.ending

    async def reap(self) -> list[Ending]:
        self.expire_waiters()
        if self._penalties:
            now = self.clock.monotonic()
            self._penalties = {s: until for s, until in self._penalties.items() if until > now}
        if not self._arbitrating():
            return []
        await self.reclaim_idle()
        expired = self.arbiter.expire(self.now())
        # In bounded transactions: each fits in the store's reserve, and the pages one frees
        # serve the next, so a full store still frees every silent seat.
        for first in range(0, len(expired), ENDINGS_PER_COMMIT):
            chunk = expired[first : first + ENDINGS_PER_COMMIT]
            await self._commit(chunk)
            self.counters.expirations += len(chunk)
        return [e.ending for e in expired]

    async def drain(self) -> None:
        """Stop granting, tell every workstation to reattach later, and commit what is queued."""
        self.draining = True
        self.tarpit.release_all()
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
            self.committer.submit(leftover).add_done_callback(consume)
        await self.committer.drain()
