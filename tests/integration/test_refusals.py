"""Refusals and denials from one source: coalesced in the journal, rate-limited per peer.
Real LMDB and grpc.aio, FakeClock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from seatd.errors import RateLimited, SeatsExhausted
from seatd.model import Actor
from seatd.reaper import Reaper, ReaperConfig
from seatd.repeats import RefusalConfig
from seatd.service import AcquireRequest, SeatService
from seatd.store import LmdbStore, StoreConfig
from seatd.transport.status import code_of
from tests.fakes import FakeClock
from tests.integration.conftest import Running, start_service, stop_service
from tests.integration.test_grpc import acquire

LAX = RefusalConfig(window=60, burst=100_000, per_second=1000)


def request(user: str, ip: str = "10.0.0.9") -> AcquireRequest:
    return AcquireRequest(
        user_code=user,
        user_name=f"{user} name",
        hostname="PC-9",
        client_version="15",
        idempotency_key=f"key-{user}",
        ip=ip,
    )


def kinds(store: LmdbStore) -> list[tuple[str, int]]:
    return [(e["kind"], e.get("repeated", 0)) for e in store.journal_entries()]


async def refuse(service: SeatService, n: int, ip: str = "10.0.0.9") -> None:
    for i in range(n):
        with pytest.raises(SeatsExhausted):
            await service.acquire(request(f"X{i}", ip))


async def test_a_refusal_flood_from_one_host_is_one_entry_per_window(
    tmp_path: Path, clock: FakeClock
) -> None:
    """500 refusals from one host journal the first at once and, when the window closes,
    one entry counting the other 499."""
    store = LmdbStore(StoreConfig(tmp_path))
    service = start_service(store, clock, cap=1, refusals=LAX)
    await service.acquire(request("AA", ip="10.0.0.1"))
    await refuse(service, 500)
    assert kinds(store) == [("granted", 0), ("refused", 0)]
    clock.advance(61)
    await Reaper(service, ReaperConfig()).tick()  # also expires AA's silent seat
    assert [k for k in kinds(store) if k[0] == "refused"] == [("refused", 0), ("refused", 499)]
    stop_service(service)
    store.close()


async def test_each_host_has_its_own_refusal_window(tmp_path: Path, clock: FakeClock) -> None:
    """A second host's first refusal is journaled at once, during the first host's window."""
    store = LmdbStore(StoreConfig(tmp_path))
    service = start_service(store, clock, cap=1, refusals=LAX)
    await service.acquire(request("AA", ip="10.0.0.1"))
    await refuse(service, 5)
    await refuse(service, 1, ip="10.0.0.10")
    assert [e["ip"] for e in store.journal_entries() if e["kind"] == "refused"] == [
        "10.0.0.9",
        "10.0.0.10",
    ]
    stop_service(service)
    store.close()


async def test_shutdown_journals_the_counts_still_open(tmp_path: Path, clock: FakeClock) -> None:
    """Draining the daemon journals the repeats of windows that have not closed yet."""
    store = LmdbStore(StoreConfig(tmp_path))
    service = start_service(store, clock, cap=1, refusals=LAX)
    await service.acquire(request("AA", ip="10.0.0.1"))
    await refuse(service, 3)
    await service.drain()
    assert kinds(store)[-1] == ("refused", 2)
    stop_service(service)
    store.close()


async def test_a_host_refused_too_often_is_rate_limited(tmp_path: Path, clock: FakeClock) -> None:
    """Past its burst a host's acquires are RESOURCE_EXHAUSTED with a retry hint, before any
    work; once the hint has passed it is answered again."""
    store = LmdbStore(StoreConfig(tmp_path))
    config = RefusalConfig(window=60, burst=5, per_second=2)
    service = start_service(store, clock, cap=1, refusals=config)
    await service.acquire(request("AA", ip="10.0.0.1"))
    await refuse(service, 5)
    with pytest.raises(RateLimited) as limited:
        await service.acquire(request("X9"))
    assert code_of(limited.value) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert limited.value.retry_after == 0.5
    assert service.counters.acquires["rate_limited"] == 1
    await refuse(service, 1, ip="10.0.0.10")  # another host is not limited
    clock.advance(0.5)
    await refuse(service, 1)
    stop_service(service)
    store.close()


async def test_denied_admin_calls_are_coalesced_then_rate_limited(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Repeated denials of one actor journal one entry; past the burst they are rate-limited."""
    store = LmdbStore(StoreConfig(tmp_path))
    config = RefusalConfig(window=60, burst=10, per_second=1)
    service = start_service(store, clock, refusals=config)
    mallory = Actor("local:mallory", "viewer")
    for _ in range(10):
        await service.journal_denied(mallory, "Evict", "admin")
    with pytest.raises(RateLimited):
        await service.journal_denied(mallory, "Evict", "admin")
    clock.advance(60)
    await service.flush_repeats()
    assert kinds(store) == [("denied", 0), ("denied", 9)]
    stop_service(service)
    store.close()


async def test_rate_limited_is_resource_exhausted_with_retry_info(running: Running) -> None:
    """On the wire: RESOURCE_EXHAUSTED, ErrorInfo RATE_LIMITED and a RetryInfo."""
    await running.seat.Acquire(acquire("AA"))
    await running.seat.Acquire(acquire("BB"))
    for i in range(RefusalConfig().burst):
        with pytest.raises(grpc.aio.AioRpcError):
            await running.seat.Acquire(acquire(f"C{i}"))
    call = running.seat.Acquire(acquire("CC"))
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await call
    assert limited.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    status = await rpc_status.aio.from_call(call)
    found: dict[str, Any] = {}
    for detail in status.details:
        for cls in (error_details_pb2.ErrorInfo, error_details_pb2.RetryInfo):
            if detail.Is(cls.DESCRIPTOR):
                msg = cls()
                detail.Unpack(msg)
                found[cls.__name__] = msg
    assert found["ErrorInfo"].reason == "RATE_LIMITED"
    assert found["RetryInfo"].retry_delay.ToTimedelta().total_seconds() > 0


async def test_a_reattach_loop_is_one_entry_per_window(tmp_path: Path, clock: FakeClock) -> None:
    """A workstation reattaching in a loop journals its first reattach, then one count."""
    store = LmdbStore(StoreConfig(tmp_path))
    service = start_service(store, clock, refusals=LAX)
    s = (await service.acquire(request("AA"))).session
    _, stream = service.attach(s.id, s.token)
    for _ in range(50):
        service.detach(stream)
        _, stream = service.attach(s.id, s.token)
    clock.advance(61)
    await service.flush_repeats()
    await service.committer.drain()
    assert [k for k in kinds(store) if k[0] == "reattached"] == [
        ("reattached", 0),
        ("reattached", 49),
    ]
    stop_service(service)
    store.close()
