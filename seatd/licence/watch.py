"""Watches the licence over time. `run` only sleeps and calls `tick`.

Each tick saves the trusted wall time (so a restart can spot a clock set back), journals a
clock found set back, installs the next licence (a period paid early) once its start date
has come, and tells every workstation when the licence's status changes (valid to grace,
grace to expired).
"""

from __future__ import annotations

import asyncio

import structlog

from seatd.licence.book import LicenceBook
from seatd.model import ClockRollback, Event, WallSeen
from seatd.service import SeatService

log = structlog.get_logger("seatd")


class LicenceWatch:
    def __init__(self, service: SeatService, book: LicenceBook, interval: float) -> None:
        self.service = service
        self.book = book
        self.interval = interval

    async def tick(self) -> None:
        trusted, rolled_back = self.book.observe()
        events: list[Event] = [WallSeen(trusted)]
        if rolled_back:
            wall = self.service.clock.wall()
            behind = round((trusted - wall).total_seconds(), 3)
            log.warning(
                "clock.rollback_detected",
                wall=wall.isoformat(),
                trusted=trusted.isoformat(),
                behind_seconds=behind,
                action="licence dates use the last trusted time",
            )
            events.append(ClockRollback(wall, trusted, trusted))
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
