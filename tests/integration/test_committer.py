"""The group committer on a real LMDB: what fails together, what commits again after a resync."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seatd.committer import Committer
from seatd.errors import StorageFailed
from seatd.model import DaemonEvent, Event
from seatd.store import LmdbStore, StoreConfig
from tests.integration.conftest import until

AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def event(n: int) -> tuple[Event, ...]:
    return (DaemonEvent("daemon_started", AT, f"event {n}"),)


class BrokenStore(LmdbStore):
    """The real store; the next `failures` commits fail, each once it passes the gate."""

    def __init__(self, config: StoreConfig) -> None:
        super().__init__(config)
        self.failures = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def commit(self, events: Sequence[Event]) -> None:
        self.entered.set()
        self.gate.wait(5)
        if self.failures:
            self.failures -= 1
            raise StorageFailed("the disk is full")
        super().commit(events)


def details(store: LmdbStore) -> list[str]:
    return [e["detail"] for e in store.journal_entries()]


async def test_decisions_queued_behind_a_failed_commit_fail_with_it(tmp_path: Path) -> None:
    """A failure refuses its batch and everything decided on top of it (though the store would
    take them), resyncs once, and the next decision commits again."""
    store = BrokenStore(StoreConfig(tmp_path))
    resyncs: list[int] = []
    committer = Committer(store, lambda: resyncs.append(1))
    store.failures, store.gate = 1, threading.Event()
    first = committer.submit(event(0))
    await until(store.entered.is_set)
    behind = [committer.submit(event(n)) for n in range(1, 6)]
    store.gate.set()
    outcomes = await asyncio.gather(first, *behind, return_exceptions=True)
    assert all(isinstance(o, StorageFailed) for o in outcomes)
    assert resyncs == [1]
    await committer.submit(event(6))
    await committer.drain()
    assert details(store) == ["event 6"]
    committer.close()
    store.close()


async def test_a_failed_resync_keeps_refusing_until_one_succeeds(tmp_path: Path) -> None:
    """If the owner cannot reload its state, nothing more is committed on top of it."""
    store = BrokenStore(StoreConfig(tmp_path))
    attempts: list[str] = []

    def resync() -> None:
        attempts.append("tried")
        if len(attempts) == 1:
            raise OSError("cannot read the store")

    committer = Committer(store, resync)
    store.failures = 1
    with pytest.raises(StorageFailed):
        await committer.submit(event(0))
    with pytest.raises(StorageFailed):
        await committer.submit(event(1))
    await committer.submit(event(2))
    assert attempts == ["tried", "tried"]
    assert details(store) == ["event 2"]
    committer.close()
    store.close()


async def test_a_barrier_resolves_after_everything_before_it(tmp_path: Path) -> None:
    store = BrokenStore(StoreConfig(tmp_path))
    committer = Committer(store, lambda: None)
    store.gate = threading.Event()
    writes = [committer.submit(event(n)) for n in range(3)]
    barrier = committer.submit(())
    await until(store.entered.is_set)
    assert not barrier.done()
    store.gate.set()
    await barrier
    assert all(w.done() for w in writes)
    assert details(store) == ["event 0", "event 1", "event 2"]
    committer.close()
    store.close()
