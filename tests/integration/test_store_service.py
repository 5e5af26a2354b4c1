"""The service and its gRPC servers on each store backend: the same seats, the same journal,
the same restart; and on etcd, a deposed leader that cannot grant."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from seatclient.v1 import admin_pb2, admin_pb2_grpc, seat_pb2, seat_pb2_grpc

from seatd.server import ServerConfig, build
from seatd.store import Store
from seatd.store.etcd import EtcdConfig, EtcdStore
from tests.etcd import lead
from tests.fakes import FakeClock
from tests.integration.conftest import Backend, Running, start_service, stop_service
from tests.integration.test_grpc import acquire


@contextlib.asynccontextmanager
async def served(store: Store, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Running]:
    """The service over `store`, behind real servers on port 0 and a unix socket."""
    service = start_service(store, clock)
    config = ServerConfig(listen="127.0.0.1:0", admin_socket=tmp_path / "admin.sock")
    servers = build(config, service)
    await servers.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{servers.port}")
    admin = grpc.aio.insecure_channel(f"unix:{config.admin_socket}")
    try:
        yield Running(
            service,
            seat_pb2_grpc.SeatServiceStub(channel),
            admin_pb2_grpc.AdminServiceStub(admin),
            channel,
            servers.port,
            servers,
        )
    finally:
        await channel.close()
        await admin.close()
        await servers.stop(0)
        stop_service(service)


async def test_sessions_come_back_after_a_restart(
    backend: Backend, clock: FakeClock, tmp_path: Path
) -> None:
    """A session granted through gRPC is there, id and token, for the next daemon; a
    released one is not."""
    store = backend.open()
    async with served(store, clock, tmp_path) as r:
        kept = await r.seat.Acquire(acquire("AA"))
        gone = await r.seat.Acquire(acquire("BB"))
        await r.seat.Release(
            seat_pb2.ReleaseRequest(session_id=gone.session_id, lease_token=gone.lease_token)
        )
    async with served(backend.reopen(store), clock, tmp_path) as r:
        back = r.service.arbiter.sessions()
    assert [(s.id, s.token) for s in back] == [(kept.session_id, kept.lease_token)]


async def test_the_journal_verifies_through_the_admin_api(
    backend: Backend, clock: FakeClock, tmp_path: Path
) -> None:
    """`seatctl journal verify`'s call walks the whole chain on either backend."""
    async with served(backend.open(), clock, tmp_path) as r:
        for user in ("AA", "BB"):
            await r.seat.Acquire(acquire(user))
        verified = await r.admin.VerifyJournal(admin_pb2.VerifyJournalRequest())
    assert (verified.intact, verified.entries, verified.last_seq) == (True, 2, 2)


async def test_a_deposed_leader_grants_nothing(
    etcd_site: EtcdConfig, clock: FakeClock, tmp_path: Path
) -> None:
    """Once another instance holds the leader key, an Acquire on the old leader fails
    UNAVAILABLE and etcd holds no session for it."""
    store = EtcdStore(etcd_site, fence=lead(etcd_site, "old"))
    async with served(store, clock, tmp_path) as r:
        lead(etcd_site, "new")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await r.seat.Acquire(acquire("AA"))
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "no longer the cluster's leader" in (refused.value.details() or "")
    store.close()
    fresh = EtcdStore(etcd_site)
    assert (fresh.load().sessions, fresh.journal_entries()) == ([], [])
    fresh.close()
