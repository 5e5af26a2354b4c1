"""Real LMDB in tmp_path, the real service with a fake clock, a real grpc.aio server on port 0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from seatclient.v1 import admin_pb2_grpc, seat_pb2_grpc

from seatd.arbiter import Arbiter, LeaseTerms, TakeoverPolicy
from seatd.entitlement import DevSeats
from seatd.repeats import RefusalConfig
from seatd.server import ServerConfig, Servers, build
from seatd.service import SeatService
from seatd.store import LmdbStore, Store, StoreConfig
from seatd.store.etcd import EtcdStore
from tests.etcd import lead
from tests.fakes import FakeClock

TERMS = LeaseTerms(ttl=30, keepalive_interval=10, grace=5, reattach_grace=10, restart_grace=30)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbStore]:
    s = LmdbStore(StoreConfig(state_dir=tmp_path / "state"))
    yield s
    s.close()


@dataclass
class Backend:
    """One store backend under test: `open` opens (again) the same seat table; what is
    still open at the end of the test is closed."""

    name: str
    opener: Callable[[], Store]
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        self.opened.append(self.opener())
        return self.opened[-1]

    def reopen(self, store: Store) -> Store:
        self.opened.remove(store)
        store.close()
        return self.open()


@pytest.fixture(params=["lmdb", "etcd"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each backend in turn, where the store's contract is the same for both."""
    if request.param == "etcd":
        site = request.getfixturevalue("etcd_site")
        fence = lead(site)
        found = Backend("etcd", lambda: EtcdStore(site, fence=fence))
    else:
        found = Backend("lmdb", lambda: LmdbStore(StoreConfig(state_dir=tmp_path / "state")))
    yield found
    for store in found.opened:
        store.close()


def start_service(
    store: Store,
    clock: FakeClock,
    cap: int = 2,
    takeover: TakeoverPolicy = TakeoverPolicy.ANYONE,
    refusals: RefusalConfig | None = None,
) -> SeatService:
    arbiter = Arbiter(TERMS)
    snapshot = store.load()
    service = SeatService(
        arbiter=arbiter,
        store=store,
        clock=clock,
        entitlement=DevSeats(cap),
        takeover=takeover,
        refusals=refusals,
    )
    arbiter.restore(snapshot.sessions, snapshot.next_id, service.now(), snapshot.endings)
    return service


async def until(predicate: Callable[[], bool], steps: int = 500) -> None:
    """Poll a condition another thread makes true (bounded: `steps` x 10 ms)."""
    for _ in range(steps):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def stop_service(service: SeatService) -> None:
    service.committer.close()


@pytest.fixture
async def service(store: LmdbStore, clock: FakeClock) -> AsyncIterator[SeatService]:
    s = start_service(store, clock)
    yield s
    stop_service(s)


@dataclass
class Running:
    service: SeatService
    seat: seat_pb2_grpc.SeatServiceStub
    admin: admin_pb2_grpc.AdminServiceStub
    channel: grpc.aio.Channel
    port: int
    servers: Servers


@pytest.fixture
async def running(service: SeatService, tmp_path: Path) -> AsyncIterator[Running]:
    config = ServerConfig(listen="127.0.0.1:0", admin_socket=tmp_path / "admin.sock")
    servers = build(config, service)
    await servers.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{servers.port}")
    admin_channel = grpc.aio.insecure_channel(f"unix:{config.admin_socket}")
    yield Running(
        service,
        seat_pb2_grpc.SeatServiceStub(channel),
        admin_pb2_grpc.AdminServiceStub(admin_channel),
        channel,
        servers.port,
        servers,
    )
    await channel.close()
    await admin_channel.close()
    await servers.stop(0)
