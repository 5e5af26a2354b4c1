"""A standby's listeners: every call refused NOT_LEADER with where the leader is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from seatclient import errors as client
from seatclient.v1 import admin_pb2, admin_pb2_grpc, seat_pb2, seat_pb2_grpc

from seatd.auth import AdminConfig
from seatd.cluster import handover, standby
from seatd.errors import NotLeader
from seatd.server import ServerConfig
from tests.fakes import FakeClock


@pytest.fixture
async def serving(tmp_path: Path) -> AsyncIterator[tuple[standby.StandbyServers, ServerConfig]]:
    config = ServerConfig(listen="127.0.0.1:0", admin_socket=tmp_path / "admin.sock")
    servers = await standby.serve(
        config, AdminConfig(), lambda: NotLeader("10.0.0.2:7117", "b"), FakeClock()
    )
    yield servers, config
    await servers.stop()


async def test_a_standby_refuses_acquire_naming_the_leader(
    serving: tuple[standby.StandbyServers, ServerConfig],
) -> None:
    """Acquire on a standby is UNAVAILABLE, NOT_LEADER, with the leader's address."""
    servers, _ = serving
    async with grpc.aio.insecure_channel(f"127.0.0.1:{servers.port}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await seat_pb2_grpc.SeatServiceStub(ch).Acquire(
                seat_pb2.AcquireRequest(user_code="BB"), timeout=10
            )
    error = client.from_rpc_error(refused.value, "a:7117")
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert isinstance(error, client.NotLeader) and error.leader == "10.0.0.2:7117"


async def test_a_standby_refuses_admin_calls_and_its_health_is_not_serving(
    serving: tuple[standby.StandbyServers, ServerConfig],
) -> None:
    """The admin socket answers NOT_LEADER too; health says NOT_SERVING."""
    _, config = serving
    async with grpc.aio.insecure_channel(f"unix:{config.admin_socket}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await admin_pb2_grpc.AdminServiceStub(ch).ListSessions(
                admin_pb2.ListSessionsRequest(), timeout=10
            )
        health = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
    assert isinstance(client.from_rpc_error(refused.value, "x"), client.NotLeader)
    assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_a_call_to_an_instance_loading_the_table_is_held_until_it_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Just elected (holding), a call waits, doing nothing, until the listeners are released
    for the leader's, and is then refused NOT_LEADER: no retry storm while the table loads."""
    monkeypatch.setattr(handover, "HOLD_AT_MOST", 60.0)  # however slow this machine
    config = ServerConfig(listen="127.0.0.1:0", admin_socket=tmp_path / "admin.sock")
    asked = asyncio.Event()

    def holding() -> bool:
        asked.set()
        return True

    servers = await standby.serve(
        config, AdminConfig(), lambda: NotLeader("127.0.0.1:1", "me"), FakeClock(), holding
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{servers.port}") as ch:
        call = asyncio.ensure_future(
            seat_pb2_grpc.SeatServiceStub(ch).Acquire(
                seat_pb2.AcquireRequest(user_code="BB"), timeout=30
            )
        )
        await asyncio.wait_for(asked.wait(), 30)
        assert not call.done()
        await servers.stop()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
    error = client.from_rpc_error(refused.value, "x")
    assert isinstance(error, client.NotLeader) and error.leader == "127.0.0.1:1"


async def test_a_standby_says_not_serving_from_the_moment_its_port_opens(tmp_path: Path) -> None:
    """Its health is NOT_SERVING before its listeners start (grpc's health servicer starts
    out SERVING): no probe can take a standby that is starting for the leader."""
    config = ServerConfig(listen="127.0.0.1:0", admin_socket=tmp_path / "admin.sock")
    servers = standby.build(config, AdminConfig(), lambda: NotLeader("10.0.0.2:7117"), FakeClock())
    seen: list[int] = []
    first = servers.servers[0]
    real_start = first.start

    async def start() -> None:
        answer = await servers.health[0].checker.Check(
            health_pb2.HealthCheckRequest(service=""), None
        )
        seen.append(answer.status)
        await real_start()

    first.start = start  # type: ignore[method-assign]
    await servers.start()
    await servers.stop()
    assert seen == [health_pb2.HealthCheckResponse.NOT_SERVING]
