"""Journal retention: prune the oldest entries by age, count or space. `run` calls `tick`.

Pruning keeps a checkpoint (the hash of the last entry removed) so verification still
covers everything that remains, and journals the prune itself. Retention is always on: a
site runs for years unattended, and a journal without a bound fills the store. While the
store is past its warning level, the oldest part of the journal goes regardless of age, so
that the seat table never stops for lack of room.

A prune removes at most `PRUNE_CHUNK` entries per transaction: deleting needs free pages
too, and a bounded delete fits in the reserve the store keeps for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from seatd.model import JournalPruned
from seatd.service import SeatService

log = structlog.get_logger("seatd")

# Entries removed per write transaction.
PRUNE_CHUNK = 10_000
# Share of the journal pruned, oldest first, while the store is short of space, and the
# seconds between such passes.
SPACE_PRUNE_SHARE = 0.25
SHORT_OF_SPACE_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class JournalConfig:
    # Keep entries this many days; 0 keeps them regardless of age (max_entries still holds).
    retention_days: int = 400
    # Keep at most this many entries.
    max_entries: int = 1_000_000
    check_interval: float = 3600.0


def prune_up_to(
    first: int,
    last: int,
    oldest: Iterable[tuple[int, datetime]],
    now: datetime,
    config: JournalConfig,
    *,
    short_of_space: bool = False,
) -> int | None:
    """The last seq to prune from the journal `first`..`last`, or None.

    `oldest` yields (seq, at) from the first entry on; it is read only as far as entries are
    older than the retention period, so a tick costs what it prunes, not the journal's size.
    """
    if last <= first:
        return None  # the newest entry always stays: the chain continues from it
    count = last - first + 1
    cut = first - 1
    if config.max_entries and count > config.max_entries:
        cut = last - config.max_entries
    if short_of_space:
        cut = max(cut, first - 1 + math.ceil(count * SPACE_PRUNE_SHARE))
    if config.retention_days:
        oldest_kept = now - timedelta(days=config.retention_days)
        for seq, at in oldest:
            if at >= oldest_kept or seq >= last:
                break
            cut = max(cut, seq)
    cut = min(cut, last - 1)
    return cut if cut >= first else None


def chunks(first: int, up_to: int) -> list[int]:
    """The seq each prune transaction stops at, so none removes more than PRUNE_CHUNK."""
    return [*range(first + PRUNE_CHUNK - 1, up_to, PRUNE_CHUNK), up_to]


class Retention:
    def __init__(self, service: SeatService, config: JournalConfig) -> None:
        self.service = service
        self.config = config

    async def tick(self) -> int | None:
        store = self.service.store
        first, last = store.journal_span()
        now = self.service.clock.wall()
        short = store.capacity.short_of_space
        with contextlib.closing(store.journal_times()) as oldest:
            up_to = prune_up_to(first, last, oldest, now, self.config, short_of_space=short)
        if up_to is None:
            return None
        for end in chunks(first, up_to):
            await self.service.committer.submit((JournalPruned(end, now),))
        log.info(
            "journal.pruned",
            up_to_seq=up_to,
            entries=up_to - first + 1,
            reason="space" if short else "retention",
        )
        return up_to

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("journal.prune_failed")
            await asyncio.sleep(self.interval())

    def interval(self) -> float:
        """Until the next pass: sooner while the store is short of space."""
        if self.service.store.capacity.short_of_space:
            return min(self.config.check_interval, SHORT_OF_SPACE_INTERVAL)
        return self.config.check_interval
