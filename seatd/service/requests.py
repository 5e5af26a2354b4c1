"""A workstation's request for a seat, its answer, and a place in the wait queue."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from seatd.model import (
    Grant,
    Holder,
    Session,
)

# The longest a request may wait in the queue for a seat.
MAX_WAIT = 3600.0


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
class Acquired:
    session: Session
    # Position in the wait queue when the request joined it; 0 if a seat was free.
    queue_position: int = 0
    waited: float = 0.0


OnQueued = Callable[[int], Awaitable[None]]
# Told a waiter's new position each time it changes (WaitForSeat streams it).
OnMoved = Callable[[int], None]


@dataclass(eq=False, slots=True)
class Waiter:
    holder: Holder
    key: str
    # Resolves to the grant and the future of its commit once a seat is handed over, or to
    # the queue position it had reached when its wait ran out.
    outcome: asyncio.Future[tuple[Grant, asyncio.Future[None]] | int]
    # Wall time it joined the queue: shown to administrators ("waiting since").
    queued_at: datetime
    moved: OnMoved | None = None
    # The position it was last told.
    position: int = 0
