"""The licence rules, pure: status and cap on a given day, what may be installed (never an
older licence than one already had), and a wall time that a clock set back cannot move
backwards.

Everything takes the day or the readings it needs; nothing here reads a clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

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
            "LICENCE_NOT_YET_VALID",
            f"the licence starts on {licence.valid_from}; import it on or after that day",
        )
    if licence.valid_until + timedelta(days=grace_days) < today:
        raise LicenceRejected(
            "LICENCE_EXPIRED",
            f"the licence ended on {licence.valid_until}: renew the subscription",
        )


def check_schedulable(licence: Licence, base_id: str, today: date) -> None:
    """Raise LicenceRejected unless `licence` may be kept now and installed on its start date,
    a day after `today`."""
    _check_consistent(licence, base_id)
    if licence.valid_from <= today:
        raise LicenceRejected(
            "LICENCE_ALREADY_STARTED",
            f"the licence started on {licence.valid_from}: it is installed, not kept for later",
        )


def _check_consistent(licence: Licence, base_id: str) -> None:
    if licence.base_id != base_id:
        raise LicenceRejected(
            "LICENCE_WRONG_BASE",
            f"this licence is for base id {licence.base_id}, but this server's base id is "
            f"{base_id}: ask the vendor for a licence for {base_id}",
        )
    if licence.valid_until < licence.valid_from:
        raise LicenceRejected(
            "LICENCE_BAD_DATES",
            f"the licence ends ({licence.valid_until}) before it starts ({licence.valid_from})",
        )
    if licence.issued_at.date() > licence.valid_until:
        raise LicenceRejected(
            "LICENCE_BAD_DATES",
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
                "LICENCE_SUPERSEDED",
                f"licence {licence.serial} was replaced by a later licence from the vendor and "
                "cannot be installed again: import the licence that replaced it",
            )
        if (licence.issued_at, licence.serial) >= (self.newest_issued, self.newest_serial):
            return
        if self.newest_serial in licence.replaces:
            return
        raise LicenceRejected(
            "LICENCE_SUPERSEDED",
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


class TrustedTime:
    """Wall time that never goes backwards, across restarts too.

    It is carried forward on the monotonic clock from the latest trusted reading (and from
    floors such as the last time seen before a restart, or a licence's issue time). A wall
    reading behind the carried time by more than the tolerance is a clock set back: the
    carried time is used instead, and the episode is reported once.
    """

    def __init__(self, floor: datetime, mono: float, tolerance: float) -> None:
        self._wall = floor
        self._mono = mono
        self.tolerance = tolerance
        self.rolled_back = False

    def carried(self, mono: float) -> datetime:
        return self._wall + timedelta(seconds=max(0.0, mono - self._mono))

    def observe(self, wall: datetime, mono: float) -> tuple[datetime, bool]:
        """Trusted time for this reading, and whether a set-back clock was just detected."""
        carried = self.carried(mono)
        behind = (carried - wall).total_seconds()
        was = self.rolled_back
        self.rolled_back = behind > self.tolerance
        trusted = max(wall, carried)
        self._wall, self._mono = trusted, mono
        return trusted, self.rolled_back and not was

    def raise_floor(self, floor: datetime, mono: float) -> None:
        if floor > self.carried(mono):
            self._wall, self._mono = floor, mono
