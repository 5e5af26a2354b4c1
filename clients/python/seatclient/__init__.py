"""seatclient: hold a seat of a seatd-licensed application.

    from seatclient import SeatClient

    with SeatClient("seats.example.lan:7117") as client, \\
            client.acquire(user_code="BB", user_name="Bruno B") as seat:
        run_the_erp()   # the seat is renewed in the background and released on exit
"""

from seatclient.aio import AsyncSeat, AsyncSeatClient
from seatclient.blocking import Seat, SeatClient
from seatclient.errors import (
    AdminRefused,
    DaemonUnavailable,
    Evicted,
    InvalidRequest,
    LeaseLost,
    LicenceInvalid,
    LimitExceeded,
    QueueFull,
    RateLimited,
    SeatError,
    SeatsExhausted,
    ServerBusy,
    StoreFull,
    Superseded,
    TakeoverDenied,
)
from seatclient.events import (
    Draining,
    LicenceChanged,
    SeatEvent,
    SeatState,
    SessionInfo,
    StateChanged,
)
from seatclient.events import Evicted as EvictedEvent

__all__ = [
    "AdminRefused",
    "AsyncSeat",
    "AsyncSeatClient",
    "DaemonUnavailable",
    "Draining",
    "Evicted",
    "EvictedEvent",
    "InvalidRequest",
    "LeaseLost",
    "LicenceChanged",
    "LicenceInvalid",
    "LimitExceeded",
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
]
