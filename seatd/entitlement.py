"""Where the seat cap comes from, and the words of a licence.

The service asks an `Entitlement` for the cap, and whether grants are allowed at all, at each
decision. The real one is `seatd.licence.book.LicenceBook` (with no licence: the free
Standard/Local edition, no cap). `DevSeats` sets a cap for development and tests only
(`seatd serve --dev-seats N`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from seatd.errors import SeatdError


class Edition(enum.Enum):
    STANDARD = 1
    ENTERPRISE = 2


class Mode(enum.Enum):
    LOCAL = 1
    CLOUD = 2


class Period(enum.Enum):
    MONTHLY = 1
    QUARTERLY = 2
    ANNUAL = 3


class Status(enum.Enum):
    FREE = 1
    VALID = 2
    GRACE = 3
    EXPIRED = 4
    # The subscription moved to another base id: the licence here ended at the transfer.
    TRANSFERRED = 5


@dataclass(frozen=True, slots=True)
class Licensee:
    company: str
    contact: str = ""
    address: str = ""
    postcode: str = ""
    city: str = ""
    country: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class LicenceView:
    """What a workstation and an admin are shown of the licence in force."""

    edition: Edition = Edition.STANDARD
    mode: Mode = Mode.LOCAL
    status: Status = Status.FREE
    period: Period | None = None
    seat_cap: int | None = None
    seats_purchased: int = 0
    valid_from: date | None = None
    valid_until: date | None = None
    # Days to the renewal date (negative once past it); grace days left while in grace.
    days_left: int | None = None
    grace_days_left: int = 0
    features: tuple[str, ...] = field(default=())
    licensee: Licensee | None = None
    base_id: str = ""
    serial: str = ""
    auto_renew: bool = False
    issued_at: datetime | None = None
    latest_client_version: str = ""
    order_url: str = ""
    note: str = ""
    # Where and when the subscription went, when status is TRANSFERRED.
    transferred_to: str = ""
    transferred_at: datetime | None = None


class Entitlement(Protocol):
    def seat_cap(self) -> int | None:
        """Seats in force now; None means no cap."""
        ...

    def grant_refusal(self) -> SeatdError | None:
        """Why no seat may be granted at all right now, or None."""
        ...

    def view(self) -> LicenceView: ...


class DevSeats:
    """A fixed cap for development and tests. Not a licence."""

    def __init__(self, seats: int) -> None:
        self.seats = seats

    def seat_cap(self) -> int | None:
        return self.seats

    def grant_refusal(self) -> SeatdError | None:
        return None

    def view(self) -> LicenceView:
        return LicenceView(
            seat_cap=self.seats,
            seats_purchased=self.seats,
            note=f"development cap of {self.seats} seats (--dev-seats); not a licence",
        )
