"""The seat policy in the running daemon: applying a reloaded one, and idle reclaim."""

from __future__ import annotations

import structlog

from seatd.policy import Policy
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
