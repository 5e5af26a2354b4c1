"""Where the seat cap comes from.

The service asks an `Entitlement` for the cap at each decision. With no licence the daemon
runs as the free Standard/Local edition: no cap, Enterprise features off. `DevSeats` sets a
cap for development and tests only (`seatd serve --dev-seats N`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class Edition(enum.Enum):
    STANDARD = 1
    ENTERPRISE = 2


class Mode(enum.Enum):
    LOCAL = 1
    CLOUD = 2


class Status(enum.Enum):
    FREE = 1
    VALID = 2
    GRACE = 3
    EXPIRED = 4


@dataclass(frozen=True, slots=True)
class LicenceView:
    """What a workstation and an admin are shown of the licence in force."""

    edition: Edition = Edition.STANDARD
    mode: Mode = Mode.LOCAL
    status: Status = Status.FREE
    seat_cap: int | None = None
    seats_purchased: int = 0
    valid_until: datetime | None = None
    features: tuple[str, ...] = field(default=())
    licensee: str = ""
    note: str = ""


class Entitlement(Protocol):
    def seat_cap(self) -> int | None:
        """Seats in force now; None means no cap."""
        ...

    def view(self) -> LicenceView: ...


class FreeStandard:
    """No licence: Standard/Local, free for life, no seat cap."""

    def seat_cap(self) -> int | None:
        return None

    def view(self) -> LicenceView:
        return LicenceView()


class DevSeats:
    """A fixed cap for development and tests. Not a licence."""

    def __init__(self, seats: int) -> None:
        self.seats = seats

    def seat_cap(self) -> int | None:
        return self.seats

    def view(self) -> LicenceView:
        return LicenceView(
            seat_cap=self.seats,
            seats_purchased=self.seats,
            note=f"development cap of {self.seats} seats (--dev-seats); not a licence",
        )
