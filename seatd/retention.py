"""Journal retention: prune the oldest entries by age or count. `run` sleeps and calls `tick`.

Pruning keeps a checkpoint (the hash of the last entry removed) so verification still
covers everything that remains, and journals the prune itself.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from seatd.model import JournalPruned
from seatd.service import SeatService

log = structlog.get_logger("seatd")


@dataclass(frozen=True, slots=True)
class JournalConfig:
    # Keep entries this many days; 0 keeps them forever.
    retention_days: int = 0
    # Keep at most this many entries; 0 means no limit.
    max_entries: int = 0
    check_interval: float = 3600.0


def prune_up_to(
    links: list[tuple[int, datetime]], now: datetime, config: JournalConfig
) -> int | None:
    """The last seq to prune, from (seq, at) pairs oldest first, or None."""
    if not links:
        return None
    cut = 0
    if config.retention_days:
        oldest_kept = now - timedelta(days=config.retention_days)
        for seq, at in links:
            if at >= oldest_kept:
                break
            cut = seq
    if config.max_entries and len(links) > config.max_entries:
        cut = max(cut, links[-config.max_entries - 1][0])
    # Never prune the newest entry: the chain continues from it.
    cut = min(cut, links[-1][0] - 1)
    return cut if cut >= links[0][0] else None


class Retention:
    def __init__(self, service: SeatService, config: JournalConfig) -> None:
        self.service = service
        self.config = config

    async def tick(self) -> int | None:
        if not (self.config.retention_days or self.config.max_entries):
            return None
        links = [
            (link.seq, datetime.fromisoformat(json.loads(link.raw)["at"].replace("Z", "+00:00")))
            for link in self.service.store.journal_links()
        ]
        up_to = prune_up_to(links, self.service.clock.wall(), self.config)
        if up_to is not None:
            await self.service.committer.submit((JournalPruned(up_to, self.service.clock.wall()),))
            log.info("journal.pruned", up_to_seq=up_to)
        return up_to

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.config.check_interval)
            try:
                await self.tick()
            except Exception:
                log.exception("journal.prune_failed")
