"""The seat policy in the running daemon: applying a reloaded one, and idle reclaim."""

from __future__ import annotations

from datetime import timedelta

import structlog

from seatd.model import Ending
from seatd.policy import Policy
from seatd.service.outbox import IdleNotice
from seatd.service.queue import QueueCalls

log = structlog.get_logger("seatd")


class PolicyCalls(QueueCalls):
    """The seat policy (`seatd.policy`): the arbiter decides with it; this applies it."""

    def set_policy(self, policy: Policy) -> None:
        """A reloaded seat policy: in force for the next decision; ends no session. A raised
        max or a smaller reservation may let a waiter in at once."""
        self.arbiter.set_policy(policy)
        self.takeover = policy.takeover
        log.info(
            "policy.applied",
            groups=len(policy.groups),
            rules=policy.rules,
            in_use=self.arbiter.in_use,
            unused_reserve=self.arbiter.unused_reserve(),
        )
        self._serve_queue()

    async def reclaim_idle(self) -> list[Ending]:
        """Idle reclaim (the seat policy's `idle`): warn the workstations idle too long, tell
        those no longer at risk, and evict those whose warning ran out; their seats go to the
        head of the queue (`_commit` serves it)."""
        now = self.now()
        step = self.arbiter.reclaim_idle(now, waiting=len(self.queue))
        for session in step.warned + step.withdrawn:
            idle = self.arbiter.idle_for(session, now.mono) or 0.0
            warned = session.idle_evict_at is not None
            evict_at = now.wall + timedelta(seconds=(session.idle_evict_at or now.mono) - now.mono)
            log.info(
                "seat.idle_warned" if warned else "seat.idle_warning_withdrawn",
                session_id=session.id,
                user_code=session.holder.user_code,
                idle=round(idle),
            )
            stream = self._streams.get(session.id)
            if stream is not None:
                reason = (
                    f"idle for {idle / 60:.0f} min: the seat goes to a waiting user at "
                    f"{evict_at:%H:%M:%S} UTC unless you are active before then"
                    if warned
                    else "activity seen (or nobody waits any more): the seat stays"
                )
                stream.push(IdleNotice(evict_at, reason, idle, withdrawn=not warned))
        if step.evicted:
            await self._commit(step.evicted)
            self.counters.evictions["idle"] += len(step.evicted)
        return [e.ending for e in step.evicted]
