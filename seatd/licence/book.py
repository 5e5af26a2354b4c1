"""The licence in force: the daemon's real `Entitlement`.

It holds the installed licence (verified again at every start), the active seats and the
trusted wall time, and answers the seat cap and whether grants are allowed today. Changes
are decided by the service and applied here only after their commit.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import structlog

from seatd.clock import Clock
from seatd.entitlement import LicenceView, Status
from seatd.errors import LicenceRefusesGrant, LicenceRejected, SeatdError, SeatsNotPurchased
from seatd.licence import rules
from seatd.licence.document import Licence
from seatd.licence.rules import LicenceConfig, TrustedTime
from seatd.licence.signing import TrustedKey, verify

log = structlog.get_logger("seatd")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LicenceBook:
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
    ) -> None:
        self.base_id = base_id
        self.config = config
        self.trusted = trusted
        self.clock = clock
        self.licence: Licence | None = None
        self.active: int | None = None
        self.load(text, active)
        floor = max(last_seen or EPOCH, self.licence.issued_at if self.licence else EPOCH)
        self.time = TrustedTime(floor, clock.monotonic(), config.rollback_tolerance)

    def load(self, text: str | None, active: int | None) -> None:
        """Put the stored licence and active seats in force (verified again)."""
        self.licence, self.active = None, active
        if text is None:
            return
        try:
            self.licence = verify(text, self.trusted)
        except LicenceRejected as exc:
            log.error(
                "licence.stored_rejected",
                reason=exc.reason,
                error=exc.message,
                action="running on the free licence until a valid one is imported",
            )

    # -- Entitlement -------------------------------------------------------------------------

    def trusted_now(self) -> datetime:
        return max(self.clock.wall(), self.time.carried(self.clock.monotonic()))

    def today(self) -> date:
        return self.trusted_now().date()

    def view(self) -> LicenceView:
        return rules.assess(
            self.licence, self.active, self.today(), self.config.grace_days, self.base_id
        )

    def seat_cap(self) -> int | None:
        return self.view().seat_cap

    def grant_refusal(self) -> SeatdError | None:
        view = self.view()
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
        return licence

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
        self.time.raise_floor(licence.issued_at, self.clock.monotonic())

    def cleared(self) -> None:
        self.licence = None
        self.active = None

    def observe(self) -> tuple[datetime, bool]:
        """Trusted time now, and whether a clock set back was just detected."""
        return self.time.observe(self.clock.wall(), self.clock.monotonic())
