"""Real LMDB in tmp_path, the real service with a fake clock, a real grpc.aio server on port 0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from seatclient.v1 import admin_pb2_grpc, seat_pb2_grpc

from seatd.arbiter import Arbiter, LeaseTerms, TakeoverPolicy
from seatd.entitlement import DevSeats
from seatd.repeats import RefusalConfig
from seatd.server import ServerConfig, Servers, build
from seatd.service import SeatService
from seatd.store import Store, StoreConfig
from tests.fakes import FakeClock

TERMS = LeaseTerms(ttl=30, keepalive_interval=10, grace=5, reattach_grace=10, restart_grace=30)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(StoreConfig(state_dir=tmp_path / "state"))
    yield s
    s.close()


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
async def service(store: Store, clock: FakeClock) -> AsyncIterator[SeatService]:
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
