"""seatclient: hold a seat of a seatd-licensed application.

    from seatclient import SeatClient

    with SeatClient("seats.example.lan:7117") as client, \\
            client.acquire(user_code="BB", user_name="Bruno B") as seat:
        run_the_erp()   # the seat is renewed in the background and released on exit
"""

from seatclient.aio import AsyncSeat, AsyncSeatClient
from seatclient.blocking import Seat, SeatClient
from seatclient.errors import (
    AcquireCancelled,
    AdminRefused,
    DaemonUnavailable,
    Evicted,
    InvalidRequest,
    LeaseLost,
    LicenceInvalid,
    LimitExceeded,
    NotLeader,
    PolicyRefused,
    QueueFull,
    RateLimited,
    SeatError,
    SeatsExhausted,
    ServerBusy,
    StoreFull,
    Superseded,
    TakeoverDenied,
    TakeoverTargetGone,
)
from seatclient.events import (
    Draining,
    EvictedEvent,
    IdleWarning,
    LicenceChanged,
    SeatEvent,
    SeatState,
    SessionInfo,
    StateChanged,
)

__all__ = [
    "AcquireCancelled",
    "AdminRefused",
    "AsyncSeat",
    "AsyncSeatClient",
    "DaemonUnavailable",
    "Draining",
    "Evicted",
    "EvictedEvent",
    "IdleWarning",
    "InvalidRequest",
    "LeaseLost",
    "LicenceChanged",
    "LicenceInvalid",
    "LimitExceeded",
    "NotLeader",
    "PolicyRefused",
    "QueueFull",
    "RateLimited",
    "Seat",
    "SeatClient",
    "SeatError",
    "SeatEvent",
    "SeatState",
    "SeatsExhausted",
    "ServerBusy",
    "SessionInfo",
    "StateChanged",
    "StoreFull",
    "Superseded",
    "TakeoverDenied",
    "TakeoverTargetGone",
]
