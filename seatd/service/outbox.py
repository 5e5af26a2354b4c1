"""What the daemon tells an attached workstation, and the bounded outbox carrying it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import structlog
from seatclient.contract import Reason

from seatd.entitlement import LicenceView
from seatd.errors import (
    LimitExceeded,
    SeatdError,
)
from seatd.limits import PING_BURST, TokenBucket
from seatd.model import (
    Ending,
)

log = structlog.get_logger("seatd")

# Notices waiting to be written on one keepalive stream: a workstation that stops reading
# its answers gets its stream closed rather than growing the daemon's memory.
OUTBOX_LIMIT = 64


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


@dataclass(frozen=True, slots=True)
class IdleNotice:
    """The seat policy will reclaim this idle seat at `evict_at` unless the user is active
    before then; `withdrawn`: activity came (or nobody waits any more), the seat stays."""

    evict_at: datetime
    reason: str
    idle: float
    withdrawn: bool = False


Notice = Pong | EvictedNotice | DrainingNotice | LicenceNotice | IdleNotice


class Stream:
    """One attached keepalive stream: an outbox the transport writes out in order."""

    def __init__(self, session_id: int, token: str, now: float) -> None:
        self.session_id = session_id
        self.token = token
        self.outbox: asyncio.Queue[Notice | None] = asyncio.Queue()
        self.error: SeatdError | None = None
        self.closed = False
        self.pings = TokenBucket.full(PING_BURST, now)
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
