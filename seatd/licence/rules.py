"""The licence rules, pure: status and cap on a given day, what may be installed (never an
older licence than one already had), and a wall time that a clock set back cannot move
backwards.

Everything takes the day or the readings it needs; nothing here reads a clock.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from seatclient.contract import LicenceReason, Reason

from seatd.entitlement import LicenceView, Status
from seatd.errors import LicenceRejected
from seatd.licence.document import Licence


@dataclass(frozen=True, slots=True)
class LicenceConfig:
    # Vendor public keys (files written by `seatd-vendor keygen`) trusted to sign licences.
    trusted_keys: tuple[Path, ...] = field(default=())
    # Days after the renewal date during which everything still works.
    grace_days: int = 14
    # How far behind the last trusted time the wall clock may be before it counts as set back.
    rollback_tolerance: float = 300.0
    # Seconds between licence checks (status changes, clock watch, last-seen time saved).
    check_interval: float = 60.0
    # A licence file installed at start and on SIGHUP when its serial differs (optional).
    file: str = ""


def assess(
    licence: Licence | None, active: int | None, today: date, grace_days: int, base_id: str
) -> LicenceView:
    """What is in force on `today`."""
    if licence is None:
        return LicenceView(base_id=base_id)
    ends = licence.valid_until
    grace_ends = ends + timedelta(days=grace_days)
    if today <= ends:
        status, grace_left = Status.VALID, 0
    elif today <= grace_ends:
        status, grace_left = Status.GRACE, (grace_ends - today).days
    else:
        status, grace_left = Status.EXPIRED, 0
    seats_active = min(active, licence.seats) if active else licence.seats
    return LicenceView(
        edition=licence.edition,
        mode=licence.mode,
        status=status,
        period=licence.period,
        seat_cap=seats_active if licence.capped else None,
        seats_purchased=licence.seats,
        valid_from=licence.valid_from,
        valid_until=ends,
        days_left=(ends - today).days,
        grace_days_left=grace_left,
        features=licence.features,
        licensee=licence.licensee,
        base_id=base_id,
        serial=licence.serial,
        auto_renew=licence.auto_renew,
        issued_at=licence.issued_at,
        latest_client_version=licence.latest_client_version,
        order_url=licence.order_url,
    )


def check_installable(licence: Licence, base_id: str, today: date, grace_days: int) -> None:
    """Raise LicenceRejected unless `licence` may replace the one in force on `today`."""
    _check_consistent(licence, base_id)
    if licence.valid_from > today:
        raise LicenceRejected(
            LicenceReason.NOT_YET_VALID,
            f"the licence starts on {licence.valid_from}; import it on or after that day",
        )
    if licence.valid_until + timedelta(days=grace_days) < today:
        raise LicenceRejected(
            Reason.LICENCE_EXPIRED,
            f"the licence ended on {licence.valid_until}: renew the subscription",
        )


def check_schedulable(licence: Licence, base_id: str, today: date) -> None:
    """Raise LicenceRejected unless `licence` may be kept now and installed on its start date,
    a day after `today`."""
    _check_consistent(licence, base_id)
    if licence.valid_from <= today:
        raise LicenceRejected(
            LicenceReason.ALREADY_STARTED,
            f"the licence started on {licence.valid_from}: it is installed, not kept for later",
        )


def _check_consistent(licence: Licence, base_id: str) -> None:
    if licence.base_id != base_id:
        raise LicenceRejected(
            LicenceReason.WRONG_BASE,
            f"this licence is for base id {licence.base_id}, but this server's base id is "
            f"{base_id}: ask the vendor for a licence for {base_id}",
        )
    if licence.valid_until < licence.valid_from:
        raise LicenceRejected(
            LicenceReason.BAD_DATES,
            f"the licence ends ({licence.valid_until}) before it starts ({licence.valid_from})",
        )
    if licence.issued_at.date() > licence.valid_until:
        raise LicenceRejected(
            LicenceReason.BAD_DATES,
            f"the licence was issued ({licence.issued_at.date()}) after it ends "
            f"({licence.valid_until})",
        )


@dataclass(frozen=True, slots=True)
class Lineage:
    """What licences this server has had, so none can be rolled back to: the newest one ever
    installed (by issue time, then serial) and the serials that later licences replaced.

    Kept across a cleared licence and restarts. A licence issued before the newest one is
    refused unless it names the newest in `replaces` (the vendor taking a licence back); a
    serial once replaced is refused for good.
    """

    newest_issued: datetime
    newest_serial: str
    replaced: frozenset[str] = frozenset()

    @classmethod
    def of(cls, licence: Licence) -> Lineage:
        return cls(licence.issued_at, licence.serial, frozenset(licence.replaces))

    def check(self, licence: Licence) -> None:
        """Raise LicenceRejected if installing `licence` would roll the licence back."""
        if licence.serial in self.replaced:
            raise LicenceRejected(
                LicenceReason.SUPERSEDED,
                f"licence {licence.serial} was replaced by a later licence from the vendor and "
                "cannot be installed again: import the licence that replaced it",
            )
        if (licence.issued_at, licence.serial) >= (self.newest_issued, self.newest_serial):
            return
        if self.newest_serial in licence.replaces:
            return
        raise LicenceRejected(
            LicenceReason.SUPERSEDED,
            f"licence {licence.serial} was issued {licence.issued_at:%Y-%m-%d %H:%M} UTC, before "
            f"licence {self.newest_serial} ({self.newest_issued:%Y-%m-%d %H:%M} UTC) that this "
            "server already had: a licence cannot be rolled back. Import the latest licence, "
            f"or ask the vendor for one that replaces {self.newest_serial}",
        )

    def after(self, licence: Licence) -> Lineage:
        """The lineage once `licence` (checked) is installed."""
        replaced = self.replaced | frozenset(licence.replaces)
        if (licence.issued_at, licence.serial) > (self.newest_issued, self.newest_serial):
            return Lineage(licence.issued_at, licence.serial, replaced)
        return Lineage(self.newest_issued, self.newest_serial, replaced)

    def to_json(self) -> str:
        return json.dumps(
            {
                "newest_issued": self.newest_issued.isoformat(),
                "newest_serial": self.newest_serial,
                "replaced": sorted(self.replaced),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Lineage:
        d = json.loads(text)
        return cls(
            datetime.fromisoformat(d["newest_issued"]),
            str(d["newest_serial"]),
            frozenset(str(r) for r in d["replaced"]),
        )


# How far the wall clock may run ahead of the proven floor and still raise it: NTP slews
# within milliseconds per check; anything more is downtime or a clock set ahead, unproven.
FLOOR_SLACK = 10.0


class ClockChange(enum.Enum):
    ROLLED_BACK = "rolled back"
    JUMPED_AHEAD = "jumped ahead"


@dataclass(frozen=True, slots=True)
class Reading:
    """One look at the wall clock: the time licence dates use, the floor to keep across
    restarts, and an episode of a clock set back or ahead found by this look (else None)."""

    now: datetime
    floor: datetime
    change: ClockChange | None


class TrustedTime:
    """Wall time for licence dates that neither a clock set back nor one set ahead can move
    for good.

    The floor is proven time: it only rises from signed times (the cloud's, a licence's
    issue time), from the monotonic clock, and from a wall reading within `FLOOR_SLACK` of
    the floor carried on the monotonic clock. It is what a restart starts from. A wall
    clock ahead of the floor by more is used (after a restart nothing tells downtime from a
    clock set ahead) but never raises it, so a run with the clock 200 days ahead leaves
    nothing behind once the clock is corrected.

    Within a run the monotonic clock does tell: a wall reading more than the tolerance
    behind the floor is a clock set back, one more than the tolerance ahead of the time in
    use is a clock set ahead. Either way licence dates keep the time in use, carried on the
    monotonic clock, and each episode is reported once. A wall that comes back from an
    unproven lead to the floor is simply believed again: the jump is undone.
    """

    def __init__(
        self, floor: datetime, mono: float, tolerance: float, *, first_start: bool = False
    ) -> None:
        self._floor = floor
        self._mono = mono
        # A first start has no history to contradict the wall clock: its first reading is
        # the floor.
        self._first_start = first_start
        # Seconds the time in use runs ahead of the floor, unproven; None before the first
        # reading of this run.
        self._ahead: float | None = None
        self.tolerance = tolerance
        self.rolled_back = False
        self.jumped = False

    def carried(self, mono: float) -> datetime:
        """The floor, carried forward on the monotonic clock."""
        return self._floor + timedelta(seconds=max(0.0, mono - self._mono))

    def _assess(
        self, wall: datetime, mono: float
    ) -> tuple[datetime, datetime, float, ClockChange | None]:
        """Time in use, new floor, new lead and the state, for this reading."""
        floor = self.carried(mono)
        ahead = (wall - floor).total_seconds()
        if self._first_start:
            return max(wall, floor), max(wall, floor), 0.0, None
        if ahead < -self.tolerance:
            return floor, floor, 0.0, ClockChange.ROLLED_BACK
        if self._ahead is not None and ahead > self._ahead + self.tolerance:
            return (
                floor + timedelta(seconds=self._ahead),
                floor,
                self._ahead,
                ClockChange.JUMPED_AHEAD,
            )
        if ahead <= FLOOR_SLACK:
            return max(wall, floor), max(wall, floor), 0.0, None
        return wall, floor, ahead, None

    def now(self, wall: datetime, mono: float) -> datetime:
        """The time licence dates use for this reading (changes nothing)."""
        return self._assess(wall, mono)[0]

    def observe(self, wall: datetime, mono: float) -> Reading:
        """Take this reading in: raise the floor if it may, and report a new episode."""
        now, floor, ahead, state = self._assess(wall, mono)
        self._floor, self._mono, self._ahead = floor, mono, ahead
        self._first_start = False
        was = ClockChange.ROLLED_BACK if self.rolled_back else None
        was = ClockChange.JUMPED_AHEAD if self.jumped else was
        self.rolled_back = state is ClockChange.ROLLED_BACK
        self.jumped = state is ClockChange.JUMPED_AHEAD
        return Reading(now, floor, state if state is not was else None)

    def raise_floor(self, floor: datetime, mono: float) -> None:
        """A signed lower bound (a licence's issue time): the time in use stays."""
        carried = self.carried(mono)
        if floor <= carried:
            return
        if self._ahead is not None:
            in_use = carried + timedelta(seconds=self._ahead)
            self._ahead = max(0.0, (in_use - floor).total_seconds())
        self._floor, self._mono = floor, mono

    def signed(self, at: datetime, mono: float) -> None:
        """Signed current time (the cloud's): the floor rises to it and the unproven lead is
        dropped, so a wall clock far ahead of it is found set ahead at the next reading."""
        self._floor, self._mono = max(self.carried(mono), at), mono
        if self._ahead is not None:
            self._ahead = 0.0
