"""What a held seat reports to the application."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from seatclient.v1 import types_pb2


class SeatState(enum.Enum):
    ACTIVE = "active"
    # Renewals are failing; the seat may still be held. The library keeps reattaching.
    JEOPARDY = "jeopardy"
    # The daemon says the lease is gone (expired, or unknown after a long outage).
    LOST = "lost"
    # Someone ended the session on purpose.
    EVICTED = "evicted"
    # Another instance attached this session (same id and token) and keeps it alive now:
    # this one stops without releasing the seat, and does not reattach.
    SUPERSEDED = "superseded"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session as listed by the daemon."""

    id: int
    user_code: str
    user_name: str
    hostname: str
    ip: str
    started_at: datetime
    duration_seconds: float

    @classmethod
    def from_pb(cls, s: types_pb2.Session) -> SessionInfo:
        return cls(
            id=s.id,
            user_code=s.user_code,
            user_name=s.user_name,
            hostname=s.hostname,
            ip=s.ip,
            started_at=s.started_at.ToDatetime(tzinfo=UTC),
            duration_seconds=s.duration.ToTimedelta().total_seconds(),
        )


@dataclass(frozen=True, slots=True)
class Evicted:
    session_id: int
    reason: str
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: SeatState
    new: SeatState


@dataclass(frozen=True, slots=True)
class LicenceChanged:
    licence: types_pb2.LicenceSummary


@dataclass(frozen=True, slots=True)
class Draining:
    reattach_after: float


SeatEvent = Evicted | StateChanged | LicenceChanged | Draining
