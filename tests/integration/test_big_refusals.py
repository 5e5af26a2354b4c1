"""Refusals at capacity on a real grpc.aio server: bounded, decodable, disclosing what is set."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from seatclient import AsyncSeatClient, SeatsExhausted
from seatclient.v1 import seat_pb2, seat_pb2_grpc

from seatd.server import ServerConfig, Servers, build
from seatd.service import AcquireRequest, SeatService
from seatd.store import Store
from seatd.transport.refusal import Disclosure
from tests.fakes import FakeClock
from tests.integration.conftest import start_service, stop_service

# grpc (C core) refuses received metadata above this at random, and above 16 KiB always.
METADATA_SOFT_LIMIT = 8192


async def serve(
    store: Store, clock: FakeClock, tmp_path: Path, cap: int, disclosure: Disclosure
) -> tuple[SeatService, Servers]:
    service = start_service(store, clock, cap=cap)
    config = ServerConfig(
        listen="127.0.0.1:0", admin_socket=tmp_path / "admin.sock", refusal_disclosure=disclosure
    )
    servers = build(config, service)
    await servers.start()
    return service, servers


@pytest.fixture
async def crowded(
    store: Store, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[tuple[SeatService, Servers]]:
    """1,000 seats taken by sessions whose every text is as long as it may be, in 4-byte
    characters: the worst case for the size of a refusal."""
    service, servers = await serve(store, clock, tmp_path, 1000, Disclosure.FULL)
    await asyncio.gather(
        *(
            service.acquire(
                AcquireRequest(
                    user_code="\U0001f600" * 63 + f"{i % 10}",
                    user_name="\U0001f600" * 128,
                    hostname="\U0001f600" * 255,
                    client_version="\U0001f600" * 64,
                    idempotency_key=f"k{i}",
                    ip="fe80::1234:5678:9abc:def0:1234:5678",
                )
            )
            for i in range(1000)
        )
    )
    yield service, servers
    await servers.stop(0)
    stop_service(service)


async def test_refusal_at_1000_seats_with_longest_names_decodes_into_seats_exhausted(
    crowded: tuple[SeatService, Servers],
) -> None:
    """The library decodes a refusal at 1,000 seats into SeatsExhausted with the total."""
    _, servers = crowded
    async with AsyncSeatClient(f"127.0.0.1:{servers.port}") as client:
        with pytest.raises(SeatsExhausted) as refused:
            await client.acquire(user_code="LATE")
    full = refused.value
    assert (full.cap, full.in_use) == (1000, 1000)
    assert [s.id for s in full.sessions] == list(range(1, len(full.sessions) + 1))
    assert full.unlisted == 1000 - len(full.sessions) > 0


async def test_refusal_trailers_stay_under_the_metadata_limit_with_longest_names(
    crowded: tuple[SeatService, Servers],
) -> None:
    """The refusal's trailers (key + value + 32 per entry, as grpc counts) stay under 8 KiB,
    and the session list is sent once."""
    _, servers = crowded
    async with grpc.aio.insecure_channel(f"127.0.0.1:{servers.port}") as channel:
        stub = seat_pb2_grpc.SeatServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Acquire(seat_pb2.AcquireRequest(user_code="LATE", idempotency_key="late"))
    trailers = refused.value.trailing_metadata() or ()
    size = sum(len(k) + len(v) + 32 for k, v in trailers)  # type: ignore[arg-type]
    assert size < METADATA_SOFT_LIMIT * 3 // 4
    host = ("\U0001f600" * 255).encode()
    carrying = [k for k, v in trailers if isinstance(v, bytes) and host in v]
    assert carrying == ["seatd-error-bin"]


async def acquire_refused(
    store: Store, clock: FakeClock, tmp_path: Path, disclosure: Disclosure, asker: str = "BB"
) -> SeatsExhausted:
    service, servers = await serve(store, clock, tmp_path, 1, disclosure)
    try:
        async with AsyncSeatClient(f"127.0.0.1:{servers.port}", client_version="erp/15") as client:
            held = await client.acquire(user_code="AA", user_name="Anne")
            with pytest.raises(SeatsExhausted) as refused:
                await client.acquire(user_code=asker)
            await held.release()
        return refused.value
    finally:
        await servers.stop(0)
        stop_service(service)


async def test_default_disclosure_shows_the_dialog_and_no_ip(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    """By default a refusal lists id, user code, name, computer and start, and no IP."""
    full = await acquire_refused(store, clock, tmp_path, ServerConfig().refusal_disclosure)
    [s] = full.sessions
    assert (s.id, s.user_code, s.user_name, s.hostname) == (1, "AA", "Anne", socket.gethostname())
    assert s.started_at == clock.wall()
    assert s.ip == ""


async def test_default_disclosure_shows_an_idle_seat_and_the_askers_own(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    """The dialog's sessions carry client version, last seen and attached, and mark the
    asking user's own session."""
    full = await acquire_refused(
        store, clock, tmp_path, ServerConfig().refusal_disclosure, asker="AA"
    )
    [s] = full.sessions
    assert (s.client_version, s.last_seen_at, s.own_user) == ("erp/15", clock.wall(), True)
    assert isinstance(s.attached, bool)


async def test_count_disclosure_lists_no_session(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    """With refusal_disclosure = count a refusal says how many are in use, and nothing else."""
    full = await acquire_refused(store, clock, tmp_path, Disclosure.COUNT)
    assert (full.in_use, full.sessions, full.unlisted) == (1, (), 1)


async def test_full_disclosure_adds_the_ip(store: Store, clock: FakeClock, tmp_path: Path) -> None:
    """With refusal_disclosure = full a refusal shows each session's IP address too."""
    full = await acquire_refused(store, clock, tmp_path, Disclosure.FULL)
    assert [s.ip for s in full.sessions] == ["127.0.0.1"]
