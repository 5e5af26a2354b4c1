"""A store that fills: the map grows to its ceiling, then grants stop and everything that
frees state still commits (DESIGN.md invariant 10). Real LMDB with a tiny map."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import grpc
import pytest
import structlog.testing
from prometheus_client.core import Metric

from seatd.arbiter import Arbiter, TakeoverPolicy
from seatd.capacity import MIN_MAP
from seatd.errors import StorageFailed, StoreFull
from seatd.metrics import SeatCollector
from seatd.model import Actor, DaemonEvent, Holder, Instant, Session
from seatd.notify import Notifier, Watchdog
from seatd.retention import SHORT_OF_SPACE_INTERVAL, JournalConfig, Retention
from seatd.service import AcquireRequest, SeatService
from seatd.store import LmdbStore, StoreConfig
from seatd.transport.status import code_of
from tests.fakes import FakeClock
from tests.integration.conftest import TERMS, start_service, stop_service

MIB = 1 << 20
TINY = 2 * MIB
RESERVE = 0.25


def request(n: int) -> AcquireRequest:
    return AcquireRequest(
        user_code=f"U{n}",
        user_name=f"user {n}",
        hostname=f"PC-{n}",
        client_version="15",
        idempotency_key=f"key-{n}",
        ip="10.0.0.1",
    )


def open_store(tmp_path: Path) -> LmdbStore:
    return LmdbStore(StoreConfig(tmp_path / "state", map_size=TINY, reserve=RESERVE))


async def fill(service: SeatService) -> list[Session]:
    """Acquire seats until the store refuses grants; return the sessions granted."""
    granted: list[Session] = []
    n = 0
    while True:
        batch = [service.acquire(request(n + i)) for i in range(25)]
        n += 25
        results = await asyncio.gather(*batch, return_exceptions=True)
        for r in results:
            if isinstance(r, StoreFull):
                return granted
            if isinstance(r, BaseException):
                raise r
            granted.append(r.session)
        assert n < 20_000, "the store never refused a grant"


@dataclass
class Full:
    service: SeatService
    store: LmdbStore
    sessions: list[Session]


def holder(n: int) -> Holder:
    return Holder(f"U{n}", f"user {n}", f"PC-{n}", "10.0.0.1", "15")


def fill_directly(store: LmdbStore, clock: FakeClock) -> None:
    """What `fill` does through the service, in fewer transactions (faster)."""
    arbiter = Arbiter(TERMS)
    now = Instant(clock.monotonic(), clock.wall())
    n = 0
    while store.capacity.grants_ok:
        grants = [
            arbiter.grant(holder(n + i), key=f"key-{n + i}", token=f"t{n + i}", now=now, cap=None)
            for i in range(100)
        ]
        n += 100
        store.commit([e for g in grants for e in g.events])


@pytest.fixture
async def full(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Full]:
    store = open_store(tmp_path)
    fill_directly(store, clock)
    service = start_service(store, clock, cap=100_000, takeover=TakeoverPolicy.ANYONE)
    sessions = service.arbiter.sessions()
    yield Full(service, store, sessions)
    stop_service(service)
    store.close()


def journal_size(store: LmdbStore) -> int:
    first, last = store.journal_span()
    return last - first + 1


async def test_the_map_grows_to_its_ceiling_and_no_further(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A fresh store maps little, doubles as it fills, and stops at store.map_size."""
    store = LmdbStore(StoreConfig(tmp_path / "state", map_size=4 * MIB, reserve=RESERVE))
    assert store._env.info()["map_size"] == MIN_MAP
    service = start_service(store, clock, cap=100_000)
    await fill(service)
    assert store._env.info()["map_size"] == 4 * MIB
    assert store.capacity.map_size == 4 * MIB
    stop_service(service)
    store.close()


async def test_grants_past_the_reserve_are_refused_with_what_to_do(full: Full) -> None:
    """Past the ceiling minus the reserve, a grant is UNAVAILABLE with a retry hint, and the
    message says to raise store.map_size, prune or free disk."""
    with pytest.raises(StoreFull) as refused:
        await full.service.acquire(request(99_999))
    assert code_of(refused.value) is grpc.StatusCode.UNAVAILABLE
    assert refused.value.retry_after > 0
    for advice in ("store.map_size", "prune", "free disk"):
        assert advice in refused.value.message
    assert not full.store.capacity.grants_ok


async def test_a_retried_acquire_still_gets_its_seat_at_a_full_store(full: Full) -> None:
    """An acquire retried with its idempotency key adds nothing, so it is answered."""
    first = full.sessions[0]
    again = await full.service.acquire(request(0))
    assert again.session.id == first.id


async def test_release_commits_at_a_full_store(full: Full) -> None:
    """A release commits (journal entry included) when grants no longer can."""
    s = full.sessions[0]
    full.service.attach(s.id, s.token)  # a restored session: attaching is not a write
    assert await full.service.release(s.id, s.token)
    assert journal_size(full.store) > 0
    assert full.store.journal_entries()[-1]["kind"] == "released"


async def test_eviction_commits_at_a_full_store(full: Full) -> None:
    """An admin eviction commits when grants no longer can."""
    ending = await full.service.evict(full.sessions[1].id, reason="space", by="admin")
    assert ending.reason == "space"
    assert full.store.journal_entries()[-1]["kind"] == "evicted"


async def test_expiry_commits_at_a_full_store(full: Full, clock: FakeClock) -> None:
    """The reaper frees every silent seat of a full store in one commit."""
    clock.advance(3600)
    expired = await full.service.reap()
    assert len(expired) == len(full.sessions)
    assert full.store.load().sessions == []


async def test_retention_prunes_a_full_store_and_grants_resume(full: Full) -> None:
    """A store short of space prunes its oldest journal entries, within its reserve, and
    grants come back."""
    before = journal_size(full.store)
    pruned = await Retention(full.service, JournalConfig()).tick()
    assert pruned is not None
    assert journal_size(full.store) < before
    assert full.store.verify_journal()[1] is None
    half = full.sessions[: len(full.sessions) // 2]
    await asyncio.gather(*(full.service.release(s.id, s.token) for s in half))
    await Retention(full.service, JournalConfig()).tick()
    assert full.store.capacity.grants_ok
    await full.service.acquire(request(99_999))


async def test_refusals_and_denials_are_not_recorded_at_a_full_store(full: Full) -> None:
    """At a full store a denied admin call is answered but adds no journal entry."""
    before = journal_size(full.store)
    await full.service.journal_denied(Actor("local:mallory", "viewer"), "Evict", "admin")
    await full.service.committer.drain()
    assert journal_size(full.store) == before


async def test_restart_at_a_full_store_serves_releases(full: Full, clock: FakeClock) -> None:
    """After a restart at a full store, a restored session releases its seat."""
    stop_service(full.service)
    full.store.close()
    store = open_store(full.store.path.parent)
    service = start_service(store, clock, cap=100_000)
    s = full.sessions[2]
    assert await service.release(s.id, s.token)
    assert s.id not in [x.id for x in store.load().sessions]
    stop_service(service)
    full.store = store
    full.service = service


def fill_the_reserve(store: LmdbStore, now: datetime) -> str:
    """Commit directly until nothing fits any more (what the gate never lets clients do);
    return the error."""
    filler = DaemonEvent("filler", now, "x" * 400)
    for _ in range(10_000):
        try:
            store.commit([filler] * 50)
        except StorageFailed as exc:
            return exc.message
    raise AssertionError("the store never filled")


def metric(service: SeatService, name: str) -> Metric:
    return next(m for m in SeatCollector(service, None).collect() if m.name == name)


async def test_the_used_ratio_is_a_metric(full: Full) -> None:
    """seatd_store_used_ratio reports the share of store.map_size in use."""
    ratio = metric(full.service, "seatd_store_used_ratio").samples[0].value
    assert ratio == full.store.capacity.ratio
    assert 1 - RESERVE <= ratio < 1


async def test_the_watchdog_fails_when_the_store_cannot_commit(full: Full) -> None:
    """Once nothing can commit any more, the self-check fails and the watchdog is not petted."""

    async def check() -> str:
        await full.service.check_store()
        return "ok"

    watchdog = Watchdog(Notifier(""), check, interval=5)
    assert await watchdog.tick()
    assert "store.map_size" in fill_the_reserve(full.store, full.service.clock.wall())
    assert not await watchdog.tick()


def test_a_filling_store_is_logged_with_what_to_do(tmp_path: Path, clock: FakeClock) -> None:
    """Crossing 80 % logs store.filling, then the grant limit store.full, both saying what to
    do; each once."""
    store = LmdbStore(StoreConfig(tmp_path / "state", map_size=TINY, reserve=0.1))
    with structlog.testing.capture_logs() as logs:
        fill_directly(store, clock)
    events = [e for e in logs if e["event"].startswith("store.f")]
    assert [e["event"] for e in events] == ["store.filling", "store.full"]
    assert all("store.map_size" in e["action"] for e in events)
    store.close()


def test_a_reader_postpones_growth_without_stalling_commits(tmp_path: Path) -> None:
    """While a read transaction is open the map is not remapped under it: commits go on in
    the current map, and the map grows at the first commit after the reader left."""
    store = LmdbStore(StoreConfig(tmp_path / "state", map_size=8 * MIB))
    clock = FakeClock()
    arbiter = Arbiter(TERMS)
    now = Instant(clock.monotonic(), clock.wall())

    def grant(n: int) -> None:
        g = arbiter.grant(holder(n), key=f"k{n}", token="t", now=now, cap=None)
        store.commit(list(g.events))

    grant(0)
    reader = store.journal_times()
    next(reader)  # a read transaction stays open
    n = 1
    while store.capacity.grow_to() is None:
        grant(n)
        n += 1
    grant(n)
    assert store._env.info()["map_size"] == MIN_MAP
    reader.close()
    grant(n + 1)
    assert store._env.info()["map_size"] == 2 * MIN_MAP
    store.close()


async def test_retention_passes_come_sooner_while_short_of_space(full: Full) -> None:
    """A store short of space is pruned every minute, not every check_interval."""
    retention = Retention(full.service, JournalConfig(check_interval=3600))
    assert retention.interval() == SHORT_OF_SPACE_INTERVAL
