"""Watches the licence over time. `run` only sleeps and calls `tick`.

Each tick saves the proven time floor (so a restart can spot a clock set back), journals a
clock found set back or set ahead, installs the next licence (a period paid early) once its
start date has come, and tells every workstation when the licence's status changes (valid
to grace, grace to expired).
"""

from __future__ import annotations

import asyncio

import structlog

from seatd.licence.book import LicenceBook
from seatd.licence.rules import ClockChange
from seatd.model import ClockJumped, ClockRollback, Event, WallSeen
from seatd.service import SeatService

log = structlog.get_logger("seatd")

# A clock episode: its log event and its journal event.
CLOCK_EPISODES: dict[ClockChange, tuple[str, type[ClockRollback | ClockJumped]]] = {
    ClockChange.ROLLED_BACK: ("clock.rollback_detected", ClockRollback),
    ClockChange.JUMPED_AHEAD: ("clock.jump_detected", ClockJumped),
}


class LicenceWatch:
    def __init__(self, service: SeatService, book: LicenceBook, interval: float) -> None:
        self.service = service
        self.book = book
        self.interval = interval

    async def tick(self) -> None:
        was_ahead = self.book.time.jumped
        reading = self.book.observe()
        trusted = reading.now
        events: list[Event] = [WallSeen(reading.floor)]
        wall = self.service.clock.wall()
        if reading.change is not None:
            name, event = CLOCK_EPISODES[reading.change]
            log.warning(
                name,
                wall=wall.isoformat(),
                trusted=trusted.isoformat(),
                wall_off_by_seconds=round((wall - trusted).total_seconds(), 3),
                action="licence dates use the last trusted time until the clock is corrected",
            )
            events.append(event(wall, trusted, trusted))
        if was_ahead and not self.book.time.jumped:
            log.info("clock.jump_undone", wall=wall.isoformat())
        await self.service.committer.submit(events)
        await self.service.install_next()
        view = self.service.entitlement.view()
        status = view.status
        if status is not self.service.licence_status:
            log.info(
                "licence.status_changed",
                old=self.service.licence_status.name,
                new=status.name,
                grace_days_left=view.grace_days_left,
            )
            self.service.licence_changed()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except Exception:
                log.exception("licence.watch_failed")
