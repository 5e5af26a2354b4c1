"""A standby's listeners handed over to the new leader (seatd.cluster.handover): the port
never closes, and a call held while the table loads is answered by the leader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from seatclient import errors as client
from seatclient.v1 import seat_pb2, seat_pb2_grpc

from seatd.auth import AdminConfig
from seatd.cluster import handover, standby
from seatd.errors import NotLeader
from seatd.server import ServerConfig, build
from seatd.store import LmdbStore
from tests.fakes import FakeClock
from tests.integration.conftest import start_service, stop_service

# Bounded waits: these run on a shared, loaded machine.
DEADLINE = 30.0


@pytest.fixture
def config(tmp_path: Path) -> ServerConfig:
    return ServerConfig(listen="127.0.0.1:0", admin_socket=tmp_path / "admin.sock")


@pytest.fixture
async def held(
    config: ServerConfig, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[standby.StandbyServers, asyncio.Event]]:
    """A just-elected instance's listeners: every call held; the event says one was."""
    monkeypatch.setattr(handover, "HOLD_AT_MOST", 60.0)  # however slow this machine
    asked = asyncio.Event()

    def holding() -> bool:
        asked.set()
        return True

    servers = await standby.serve(
        config, AdminConfig(), lambda: NotLeader("127.0.0.1:1", "me"), clock, holding
    )
    yield servers, asked
    await servers.stop()


async def test_a_call_held_while_the_leader_loads_is_answered_by_the_leader(
    held: tuple[standby.StandbyServers, asyncio.Event],
    config: ServerConfig,
    store: LmdbStore,
    clock: FakeClock,
) -> None:
    """An Acquire that came in while the table loaded is granted once the leader's handlers
    take the listeners over: the workstation never retries."""
    listeners, asked = held
    service = start_service(store, clock)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{listeners.port}") as ch:
        call = asyncio.ensure_future(
            seat_pb2_grpc.SeatServiceStub(ch).Acquire(
                seat_pb2.AcquireRequest(user_code="BB", idempotency_key="b"), timeout=DEADLINE
            )
        )
        await asyncio.wait_for(asked.wait(), DEADLINE)
        assert not call.done()
        leader = build(config, service, standby=listeners)
        await leader.start()
        granted = await call
    await leader.stop(0)
    stop_service(service)
    assert granted.session_id == 1


async def test_a_connection_to_the_standby_carries_calls_to_the_leader(
    config: ServerConfig, store: LmdbStore, clock: FakeClock
) -> None:
    """The port does not close at the takeover: a workstation's connection to the standby,
    refused NOT_LEADER a moment ago, carries its next call to the leader, with no
    reconnection (and so no reconnect backoff) in between."""
    listeners = await standby.serve(
        config, AdminConfig(), lambda: NotLeader("127.0.0.1:1", "other"), clock
    )
    service = start_service(store, clock)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{listeners.port}") as ch:
        stub = seat_pb2_grpc.SeatServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Acquire(seat_pb2.AcquireRequest(user_code="BB"), timeout=DEADLINE)
        assert isinstance(client.from_rpc_error(refused.value, "x"), client.NotLeader)
        assert ch.get_state() is grpc.ChannelConnectivity.READY
        changed = asyncio.ensure_future(ch.wait_for_state_change(grpc.ChannelConnectivity.READY))
        leader = build(config, service, standby=listeners)
        await leader.start()
        granted = await stub.Acquire(
            seat_pb2.AcquireRequest(user_code="BB", idempotency_key="b"), timeout=DEADLINE
        )
        assert not changed.done()
        changed.cancel()
    await leader.stop(0)
    stop_service(service)
    assert granted.session_id == 1
