"""Frees the seats of dead workstations. `run` only sleeps and calls `tick`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from seatd.model import Ending
from seatd.service import SeatService

log = structlog.get_logger("seatd")


@dataclass(frozen=True, slots=True)
class ReaperConfig:
    tick: float = 1.0


class Reaper:
    def __init__(self, service: SeatService, config: ReaperConfig) -> None:
        self.service = service
        self.config = config

    async def tick(self) -> list[Ending]:
        ended = await self.service.reap()
        await self.service.flush_repeats()
        return ended

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick)
            try:
                await self.tick()
            except Exception:
                log.exception("reaper.tick_failed")
