"""Long scans that leave the GIL to the event loop.

A long read runs in a worker thread, but a CPU-bound Python loop holds the GIL for the
interpreter's switch interval (5 ms) each time the event loop or the commit thread wants it
back, and a workstation's call needs it several times: verifying 200,000 journal entries in
a thread still tripled acquire latency. Handing the GIL over every PACE items (well under a
millisecond of work) keeps that wait short; the scan takes a little longer.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar, overload

T = TypeVar("T")

PACE = 64
PAUSE = 0.0002


def paced(items: Iterable[T]) -> Iterator[T]:
    """`items`, with the GIL handed over every PACE of them."""
    for n, item in enumerate(items):
        if n % PACE == 0:
            time.sleep(PAUSE)
        yield item


class Paced(Sequence[T]):
    """A list whose iteration is `paced`."""

    def __init__(self, items: list[T]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        return self._items[index]

    def __iter__(self) -> Iterator[T]:
        return paced(self._items)
