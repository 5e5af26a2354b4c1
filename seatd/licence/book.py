"""The licence in force: the daemon's real `Entitlement`.

It holds the installed licence (verified again at every start), the active seats, the
trusted wall time, and the next licence when a later period is already paid (installed on
its start date with no further contact with the cloud). It answers the seat cap and whether
grants are allowed today. Changes are decided by the service and applied here only after
their commit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import structlog

from seatd.clock import Clock
from seatd.entitlement import LicenceView, Status
from seatd.errors import LicenceRefusesGrant, LicenceRejected, SeatdError, SeatsNotPurchased
from seatd.licence import rules
from seatd.licence.document import Licence
from seatd.licence.rules import LicenceConfig, Lineage, Reading, TrustedTime
from seatd.licence.signing import TrustedKey, verify

log = structlog.get_logger("seatd")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Transfer:
    """Where and when this base id's subscription went, and the licence it ended."""

    to_base_id: str
    at: datetime
    serial: str

    @classmethod
    def stored(cls, fields: Mapping[str, str]) -> Transfer:
        return cls(fields["to_base_id"], datetime.fromisoformat(fields["at"]), fields["serial"])


class LicenceBook:
    # The last view and what it was computed from: every Acquire asks for the view (refusal,
    # cap, the answer's summary), and it changes only with these inputs.
    _view: tuple[tuple[object, ...], LicenceView] | None = None

    def __init__(
        self,
        *,
        base_id: str,
        config: LicenceConfig,
        trusted: dict[str, TrustedKey],
        clock: Clock,
        text: str | None = None,
        active: int | None = None,
        last_seen: datetime | None = None,
        next_text: str | None = None,
        transferred: Mapping[str, str] | None = None,
        lineage: str | None = None,
    ) -> None:
        self.base_id = base_id
        self.config = config
        self.trusted = trusted
        self.clock = clock
        self.licence: Licence | None = None
        self.active: int | None = None
        # The licence kept for a later period, and its text (installed as it came).
        self.next: Licence | None = None
        self.next_text = ""
        self.transferred: Transfer | None = None
        self.lineage: Lineage | None = None
        self.load(text, active, next_text, transferred, lineage)
        floor = max(last_seen or EPOCH, self.licence.issued_at if self.licence else EPOCH)
        self.time = TrustedTime(
            floor, clock.monotonic(), config.rollback_tolerance, first_start=last_seen is None
        )

    def load(
        self,
        text: str | None,
        active: int | None,
        next_text: str | None = None,
        transferred: Mapping[str, str] | None = None,
        lineage: str | None = None,
    ) -> None:
        """Put the stored licence, active seats, next licence, transfer and lineage in force
        (the licences verified again)."""
        self.licence, self.active = None, active
        # Installs before the lineage was kept: the licence in force starts it.
        self.lineage = Lineage.from_json(lineage) if lineage else None
        self.unstage()
        self.transferred = Transfer.stored(transferred) if transferred else None
        if text is not None:
            try:
                self.licence = verify(text, self.trusted)
            except LicenceRejected as exc:
                log.error(
                    "licence.stored_rejected",
                    reason=exc.reason,
                    error=exc.message,
                    action="running on the free licence until a valid one is imported",
                )
        if self.lineage is None and self.licence is not None:
            self.lineage = Lineage.of(self.licence)
        if next_text is not None:
            try:
                self.staged(verify(next_text, self.trusted), next_text)
            except LicenceRejected as exc:
                log.error(
                    "licence.stored_next_rejected",
                    reason=exc.reason,
                    error=exc.message,
                    action="the licence in force stays; the next sync brings the next one",
                )

    # -- Entitlement -------------------------------------------------------------------------

    def trusted_now(self) -> datetime:
        return self.time.now(self.clock.wall(), self.clock.monotonic())

    def today(self) -> date:
        return self.trusted_now().date()

    def view(self) -> LicenceView:
        today = self.today()
        inputs = (
            self.licence,
            self.active,
            self.transferred,
            today,
            self.config.grace_days,
            self.base_id,
        )
        if self._view is None or self._view[0] != inputs:
            self._view = (inputs, self._assess(today))
        return self._view[1]

    def _assess(self, today: date) -> LicenceView:
        view = rules.assess(
            self.licence, self.active, today, self.config.grace_days, self.base_id
        )
        moved = self.transferred
        if moved is None or self.licence is None:
            return view
        return dataclasses.replace(
            view,
            status=Status.TRANSFERRED,
            transferred_to=moved.to_base_id,
            transferred_at=moved.at,
            note=f"the subscription moved to base id {moved.to_base_id} on {moved.at.date()}",
        )

    def seat_cap(self) -> int | None:
        return self.view().seat_cap

    def grant_refusal(self) -> SeatdError | None:
        view = self.view()
        if view.status is Status.TRANSFERRED:
            return LicenceRefusesGrant(
                f"this base id's subscription moved to base id {view.transferred_to} on "
                f"{view.transferred_at.date() if view.transferred_at else '?'}: its licence "
                "ended then, so no new connections here (open sessions continue)"
            )
        if view.status is not Status.EXPIRED:
            return None
        return LicenceRefusesGrant(
            f"the licence ended on {view.valid_until} and its {self.config.grace_days}-day "
            "grace is over: no new connections until it is renewed (open sessions continue)"
        )

    # -- changes, checked before the commit and applied after it -----------------------------

    def check(self, text: str) -> Licence:
        """The licence in `text` if it may replace the one in force; LicenceRejected if not."""
        licence = verify(text, self.trusted)
        rules.check_installable(licence, self.base_id, self.today(), self.config.grace_days)
        if self.lineage is not None:
            self.lineage.check(licence)
        return licence

    def check_any(self, text: str) -> tuple[Licence, bool]:
        """The licence in `text`, and whether it starts after today (then it is kept until its
        start date); LicenceRejected if it may neither replace the one in force nor be kept."""
        licence = verify(text, self.trusted)
        if self.lineage is not None:
            self.lineage.check(licence)
        if licence.valid_from > self.today():
            rules.check_schedulable(licence, self.base_id, self.today())
            return licence, True
        rules.check_installable(licence, self.base_id, self.today(), self.config.grace_days)
        return licence, False

    def check_active(self, seats: int) -> int:
        """The current active seats, if `seats` may become the new value."""
        view = self.view()
        if self.licence is None or view.seat_cap is None:
            raise SeatsNotPurchased("the licence in force has no seat cap to change")
        if seats < 1:
            raise SeatsNotPurchased("active seats must be at least 1")
        if seats > view.seats_purchased:
            raise SeatsNotPurchased(
                f"only {view.seats_purchased} seats are purchased: to use {seats}, order "
                f"{seats - view.seats_purchased} more (seatctl seats order) first"
            )
        return view.seat_cap

    def installed(self, licence: Licence) -> None:
        self.licence = licence
        self.active = licence.seats
        self.lineage = self.lineage.after(licence) if self.lineage else Lineage.of(licence)
        self.time.raise_floor(licence.issued_at, self.clock.monotonic())
        self.transferred = None
        if self.next is not None and self.next.serial == licence.serial:
            self.unstage()

    def staged(self, licence: Licence, text: str) -> None:
        self.next, self.next_text = licence, text

    def unstage(self) -> None:
        self.next, self.next_text = None, ""

    def due(self) -> str | None:
        """The text of the next licence once its start date has come."""
        if self.next is None or self.next.valid_from > self.today():
            return None
        return self.next_text

    def moved(self, transfer: Transfer) -> None:
        """The cloud said the subscription went elsewhere: the licence here has ended."""
        self.transferred = transfer
        self.unstage()

    def cleared(self) -> None:
        self.licence = None
        self.active = None
        self.transferred = None
        self.unstage()

    def observe(self) -> Reading:
        """Trusted time now, the floor to keep, and a clock episode just detected."""
        return self.time.observe(self.clock.wall(), self.clock.monotonic())
