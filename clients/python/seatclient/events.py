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
    """A session as a refusal at capacity lists it (what the daemon's `refusal_disclosure`
    shows; fields it does not disclose are empty).

    `id` the session id (pass it to `acquire(evict_session=...)`), `user_code`, `user_name`,
    `hostname` (the workstation), `ip` (only with disclosure `full`), `client_version`,
    `started_at` (UTC), `duration_seconds` (how long it has been open, on the daemon),
    `last_seen_at` (UTC: its last renewal; None when not disclosed), `attached` (a keepalive
    stream is open now: False with an old `last_seen_at` is a crashed or disconnected
    workstation, whose seat frees itself within the lease), `own_user` (it belongs to the
    user who asked: a session of theirs left open elsewhere).
    """

    id: int
    user_code: str
    user_name: str
    hostname: str
    ip: str
    started_at: datetime
    duration_seconds: float
    client_version: str = ""
    last_seen_at: datetime | None = None
    attached: bool = False
    own_user: bool = False

    @classmethod
    def from_pb(cls, s: types_pb2.Session, user_code: str = "") -> SessionInfo:
        """`user_code`: the user asking, to mark their own sessions."""
        return cls(
            id=s.id,
            user_code=s.user_code,
            user_name=s.user_name,
            hostname=s.hostname,
            ip=s.ip,
            started_at=s.started_at.ToDatetime(tzinfo=UTC),
            duration_seconds=s.duration.ToTimedelta().total_seconds(),
            client_version=s.client_version,
            last_seen_at=(
                s.last_seen_at.ToDatetime(tzinfo=UTC) if s.HasField("last_seen_at") else None
            ),
            attached=s.attached,
            own_user=bool(user_code) and s.user_code == user_code,
        )


@dataclass(frozen=True, slots=True)
class EvictedEvent:
    """The seat was taken on purpose (`reason` as the evicting person or policy gave it,
    `by` who, `at` when, UTC). A StateChanged to EVICTED follows."""

    session_id: int
    reason: str
    by: str
    at: datetime


# The older name, kept for applications that import it from here.
Evicted = EvictedEvent


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The seat moved from `old` to `new` (see `SeatState`)."""

    old: SeatState
    new: SeatState


@dataclass(frozen=True, slots=True)
class LicenceChanged:
    """The licence in force changed (renewed, seats added or removed, expired)."""

    licence: types_pb2.LicenceSummary


@dataclass(frozen=True, slots=True)
class Draining:
    """The daemon is shutting down (a restart, usually): the seat is kept, the library
    reattaches after about `reattach_after` seconds; meanwhile the seat is JEOPARDY."""

    reattach_after: float


@dataclass(frozen=True, slots=True)
class IdleWarning:
    """The daemon's seat policy will take this idle seat back at `evict_at` unless the user
    is active before then (`Seat.touch()`); `withdrawn`: activity came in time, or nobody
    waits any more, and the seat stays."""

    evict_at: datetime
    reason: str
    idle: float
    withdrawn: bool = False


SeatEvent = EvictedEvent | StateChanged | LicenceChanged | Draining | IdleWarning
