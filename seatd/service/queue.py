"""The wait queue at capacity: joining, expiry, positions, and serving it in order (the seat
policy's priority, then first come first served)."""

from __future__ import annotations

import asyncio
from typing import NoReturn

import structlog

from seatd.errors import (
    Draining,
    LimitExceeded,
    PolicyRefused,
    SeatdError,
    SeatsExhausted,
)
from seatd.model import (
    Holder,
)
from seatd.service.core import Core
from seatd.service.requests import MAX_WAIT, Acquired, AcquireRequest, OnMoved, OnQueued, Waiter

log = structlog.get_logger("seatd")


class QueueCalls(Core):
    """Waiting for a seat: first come first served, one timer for the whole queue."""

    async def _wait(
        self,
        holder: Holder,
        req: AcquireRequest,
        on_queued: OnQueued | None,
        on_moved: OnMoved | None,
    ) -> Acquired:
        """Queue behind earlier waiters; `_serve_queue` hands seats out in arrival order."""
        outcome = asyncio.get_running_loop().create_future()
        waiter = Waiter(holder, req.idempotency_key, outcome, self.clock.wall(), on_moved)
        started = self.clock.monotonic()
        try:
            ticket, joined_at = self.queue.join(
                waiter, req.ip, started + req.wait, self.arbiter.policy.priority_of(holder)
            )
        except LimitExceeded as full:
            self.counters.acquires["queue_full"] += 1
            # A host that keeps knocking on a full queue is rate-limited like any refused one.
            self.limits.refused(("seat", req.ip), started)
            await self._refuse_after_wait(req.wait, full)
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
            rule = self.arbiter.policy_refusal(holder, self.entitlement.seat_cap())
            if rule is not None:
                await self._journal_refusal(holder, f"{rule.reason}: {rule.message}")
                raise rule
            await self._journal_refusal(holder, "no connection freed while waiting")
            raise self._exhausted(queue_position=result)
        grant, committed = result
        await self._settle(grant.events, committed)
        return Acquired(grant.session, joined_at, self.clock.monotonic() - started)

    async def _refuse_after_wait(self, wait: float, refusal: SeatdError) -> NoReturn:
        """Refuse an acquire that asked to wait `wait` s for a seat once that wait has run out,
        as if it had queued and no seat had come (`seatd.tarpit`); at once if it asked for no
        wait or too many are held already."""
        await self.tarpit.hold(min(wait, MAX_WAIT))
        if self.draining:
            raise Draining(self.arbiter.terms.keepalive_interval)
        raise refusal

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
        """Hand every free seat to the waiters, by priority then first come first served,
        passing over those the seat policy does not allow a seat yet (a group at its max
        keeps nobody else waiting). Runs synchronously right after each decision that may
        free a seat, so nobody can slip in between."""
        cap = self.entitlement.seat_cap()
        if not self.store.capacity.grants_ok or not self.queue:
            return  # the waiters keep waiting (or time out) until there is room again
        if not self._leading():
            self._queue_held = True  # a paused leader grants nothing: the reaper serves them
            return
        served: list[int] = []
        for ticket, waiter in self.queue.items():
            if cap is not None and self.arbiter.in_use >= cap:
                break
            if waiter.outcome.done():  # cancelled: its caller is gone
                served.append(ticket)
                continue
            try:
                grant = self._grant(waiter.holder, waiter.key, None)
            except PolicyRefused as refused:
                if refused.waitable:
                    continue
                served.append(ticket)
                waiter.outcome.set_exception(refused)
                continue
            except SeatsExhausted:
                break
            except SeatdError as exc:
                served.append(ticket)
                waiter.outcome.set_exception(exc)
                continue
            served.append(ticket)
            waiter.outcome.set_result((grant, self.committer.submit(grant.events)))
        for ticket in served:
            self.queue.leave(ticket)
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
