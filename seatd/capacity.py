"""How full the store is, and what that allows: a pure reading of the LMDB numbers.

The LMDB map grows on its own, doubling, up to a ceiling (`store.map_size`). Of that ceiling
a reserve (`store.reserve`, a share) is kept for what frees or bounds state: releases,
expiries, evictions, journal pruning, daemon start and stop. Grants, and the records that
only add (refusals, denials, reattaches, new tokens), are refused once the used space passes
the ceiling minus the reserve, so that the rest always commits (DESIGN.md invariant 10).
From `WARN_AT` the daemon warns (log, metrics, `seatctl status`) and retention prunes the
oldest journal entries regardless of their age.

"Used" counts the pages of every database's tree: what a prune or a release gives back
lowers it at once, unlike the data file's high-water mark. Each live session also holds
`ENDING_BYTES` back for the journal entry of its ending, so that however many sessions end
at once (a network outage, every lease expiring after a restart), their endings fit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

WARN_AT = 0.8
# The smallest map the store opens with; it doubles from there as the state grows.
MIN_MAP = 1 << 20
# Room held back per live session for its ending's journal entry (an entry with the
# longest names allowed, plus LMDB's overhead).
ENDING_BYTES = 1024

ADVICE = (
    "raise store.map_size in the config and restart, prune the journal "
    "(lower journal.max_entries or journal.retention_days), or free disk space"
)


class Level(enum.IntEnum):
    ROOMY = 0
    FILLING = 1  # past WARN_AT: warn, prune the journal for space
    FULL = 2  # past the grant limit: only what frees or bounds state commits


@dataclass(frozen=True, slots=True)
class Capacity:
    used: int  # bytes in the databases' pages
    map_size: int  # the current map
    ceiling: int  # the most the map may grow to
    reserve: float  # share of the ceiling kept for what frees state
    sessions: int = 0  # live sessions, each owed the room of its ending
    # The data file's high-water mark: pages a long reader keeps from reuse count here.
    high_water: int = 0

    @property
    def ratio(self) -> float:
        """Share of the ceiling used, or held for the endings of the live sessions."""
        return (self.used + self.sessions * ENDING_BYTES) / self.ceiling

    @property
    def level(self) -> Level:
        if self.ratio >= 1 - self.reserve:
            return Level.FULL
        return Level.FILLING if self.ratio >= WARN_AT else Level.ROOMY

    @property
    def grants_ok(self) -> bool:
        return self.level < Level.FULL

    @property
    def short_of_space(self) -> bool:
        return self.level >= Level.FILLING

    def grow_to(self) -> int | None:
        """The map size to grow to before the next write (more than half of it used, or
        written to), or None."""
        if self.map_size >= self.ceiling or max(self.used, self.high_water) * 2 < self.map_size:
            return None
        return min(self.ceiling, self.map_size * 2)

    def describe(self) -> str:
        return f"{self.ratio:.0%} of {self.ceiling / (1 << 20):g} MiB used"


def initial_map(file_size: int, ceiling: int) -> int:
    """The map to open with: twice what the data file holds, at least MIN_MAP, at most the
    ceiling (LMDB itself never maps less than the data already there)."""
    size = MIN_MAP
    while size < 2 * file_size:
        size *= 2
    return min(size, ceiling)
