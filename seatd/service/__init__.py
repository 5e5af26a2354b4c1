"""The service layer: where decision -> durable commit -> acknowledgement happens.

One class, `SeatService`, in parts by responsibility: `core` (shared state and the commit path),
`seats` and `queue` (workstation seats), `policy` (applying the seat policy, idle reclaim),
`streams` (keepalive), `licences`, `access` (tokens).
Transports (gRPC, web) call it; the arbiter decides, the store commits.
"""

from seatd.service.access import AccessCalls
from seatd.service.core import SEATD, Core, Counters, Usage
from seatd.service.licences import LicenceCalls
from seatd.service.outbox import (
    OUTBOX_LIMIT,
    DrainingNotice,
    EvictedNotice,
    IdleNotice,
    LicenceNotice,
    Notice,
    Pong,
    Stream,
)
from seatd.service.policy import PolicyCalls
from seatd.service.requests import MAX_WAIT, Acquired, AcquireRequest, OnMoved, OnQueued
from seatd.service.seats import SeatCalls
from seatd.service.streams import StreamCalls


class SeatService(SeatCalls, PolicyCalls, StreamCalls, LicenceCalls, AccessCalls):
    """Every call a transport makes: workstation seats, seat policy, keepalive, licence,
    tokens."""


__all__ = [
    "MAX_WAIT",
    "OUTBOX_LIMIT",
    "SEATD",
    "AcquireRequest",
    "Acquired",
    "Core",
    "Counters",
    "DrainingNotice",
    "EvictedNotice",
    "IdleNotice",
    "LicenceNotice",
    "Notice",
    "OnMoved",
    "OnQueued",
    "Pong",
    "SeatService",
    "Stream",
    "Usage",
]
