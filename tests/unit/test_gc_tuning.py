"""The daemon's garbage collector settings (seatd.daemon.collect_in_large_batches)."""

from __future__ import annotations

import gc

from seatd.daemon import YOUNG_COLLECTION_EVERY, collect_in_large_batches


def test_young_garbage_is_collected_in_large_batches() -> None:
    """The daemon runs a young collection every 50,000 allocations, not CPython's 700."""
    before = gc.get_threshold()
    try:
        collect_in_large_batches()
        assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, before[1], before[2])
        assert YOUNG_COLLECTION_EVERY == 50_000
    finally:
        gc.set_threshold(*before)
