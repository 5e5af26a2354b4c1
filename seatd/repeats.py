"""Repeated refusals, denials and reattaches from one source: one journal entry a window.

A LAN host can ask for a seat, or call an admin RPC it may not, thousands of times a second.
Journaling every call grows the journal at the caller's rate; journaling none hides it. So,
per source (the peer's address, the admin actor, the session), the first such event of a
window is journaled at once, the repeats within the window are only counted, and when the
window closes (at the source's next event, on a tick, or at shutdown) one `Repeated` entry
says how many there were and since when. Nothing is lost, and the journal grows by
O(sources x windows) whatever the rate. A bounded number of windows is open at once; past
it the oldest closes early.

Pure, like the arbiter: no I/O, no clock of its own; every method takes `now` (monotonic).
Windows are kept in the order they opened, so closing the expired ones stops at the first
that is still open.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime

from seatd.model import Denied, Reattached, Refused, Repeated

Noise = Refused | Denied | Reattached


@dataclass(frozen=True, slots=True)
class RefusalConfig:
    # Seconds during which repeats from one source are counted into one journal entry.
    window: float = 60.0
    # Refused or denied calls a peer may make at once, then `per_second`; beyond that its
    # calls are answered RESOURCE_EXHAUSTED with a retry hint, and not journaled.
    burst: int = 20
    per_second: float = 2.0


@dataclass(slots=True)
class _Window:
    opened: float
    last: Noise
    count: int = 0
    since: datetime | None = None


class Repeats:
    def __init__(self, window: float, max_sources: int = 10_000) -> None:
        self.window = window
        self.max_sources = max_sources
        self._open: dict[Hashable, _Window] = {}

    @property
    def open_windows(self) -> int:
        return len(self._open)

    def observe(self, source: Hashable, event: Noise, now: float) -> list[Noise | Repeated]:
        """What to journal now for `event` from `source`: the first of a window at once
        (after the summary of the source's previous window); a repeat, nothing."""
        found = self._open.get(source)
        out: list[Noise | Repeated] = []
        if found is not None and now - found.opened >= self.window:
            out += self._close(source)
            found = None
        if found is not None:
            found.count += 1
            found.last = event
            found.since = found.since or event.at
            return out
        self._open[source] = _Window(now, event)
        out.append(event)
        if len(self._open) > self.max_sources:
            out += self._close(next(iter(self._open)))
        return out

    def flush(self, now: float, *, everything: bool = False) -> list[Repeated]:
        """The summaries of the windows that have closed by `now` (all of them at shutdown)."""
        out: list[Repeated] = []
        for source in list(self._open):
            if not everything and now - self._open[source].opened < self.window:
                break
            out += self._close(source)
        return out

    def _close(self, source: Hashable) -> list[Repeated]:
        window = self._open.pop(source)
        if not window.count or window.since is None:
            return []
        return [Repeated(window.last, window.count, window.since)]
