"""A standby whose leader stopped answering on its port (seatd.cluster.probe) holds the
workstations' calls instead of sending them to the dead address."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from seatclient.v1 import seat_pb2, seat_pb2_grpc

from seatd.auth import AdminConfig
from seatd.cluster import handover, node, standby
from seatd.cluster.election import Instance
from seatd.cluster.probe import LeaderProbe
from seatd.errors import NotLeader
from seatd.server import ServerConfig, build
from seatd.store import LmdbStore
from tests.fakes import FakeClock
from tests.integration.conftest import start_service, stop_service

# Bounded waits: these run on a shared, loaded machine.
DEADLINE = 30.0


@dataclass
class Standing:
    """What `node.holding` reads of the election: a standby naming `leader`."""

    leader: Instance | None
    ttl: int = 60
    leading: bool = False


async def eventually(check: object, what: str) -> None:
    """Poll `check()` (bounded by DEADLINE) until it is true."""
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not check():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not {what} within {DEADLINE} s")
        await asyncio.sleep(0.02)


@pytest.fixture
async def old_leader() -> AsyncIterator[tuple[grpc.aio.Server, Instance]]:
    """A leader's port: a bare grpc server, answering until the test stops it."""
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield server, Instance("old", f"127.0.0.1:{port}")
    await server.stop(0)


async def test_a_leader_whose_port_refuses_after_answering_is_gone(
    old_leader: tuple[grpc.aio.Server, Instance],
) -> None:
    """Once the probe has reached the leader, the leader's process going away (its port
    refusing connections) reads as gone."""
    server, leader = old_leader
    probe = LeaderProbe()
    await eventually(lambda: not probe.gone(leader) and probe.reached, "reached")
    await server.stop(0)
    await eventually(lambda: probe.gone(leader), "gone")
    await probe.close()


async def test_while_no_leader_is_known_the_last_one_gone_still_reads_as_gone(
    old_leader: tuple[grpc.aio.Server, Instance],
) -> None:
    """Between the leader key's expiry and the election no leader is named; calls stay held
    (they would otherwise be refused with no leader to go to)."""
    server, leader = old_leader
    probe = LeaderProbe()
    await eventually(lambda: not probe.gone(leader) and probe.reached, "reached")
    await server.stop(0)
    await eventually(lambda: probe.gone(leader), "gone")
    assert probe.gone(None)
    await probe.close()


async def test_a_standby_reaches_its_leader_before_any_workstation_asks(
    old_leader: tuple[grpc.aio.Server, Instance],
) -> None:
    """Following the leader it names, the probe has reached it with no call made: the
    first workstation to come after the leader died is held, not sent there."""
    _, leader = old_leader
    probe = LeaderProbe()
    following = asyncio.ensure_future(probe.follow(lambda: leader, 0.05))
    await eventually(lambda: probe.reached, "reached")
    following.cancel()
    await probe.close()


async def test_a_call_to_a_standby_whose_leader_is_gone_waits_for_the_new_leader(
    old_leader: tuple[grpc.aio.Server, Instance],
    tmp_path: Path,
    store: LmdbStore,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An Acquire sent to the standby after the leader died is held, not refused naming the
    dead leader, and is granted by this instance once it leads."""
    monkeypatch.setattr(handover, "HOLD_AT_MOST", 60.0)  # however slow this machine
    server, leader = old_leader
    probe = LeaderProbe()
    holding = node.holding(Standing(leader), probe)  # type: ignore[arg-type]
    held = asyncio.Event()

    def observed() -> bool:
        if holding():
            held.set()
            return True
        return False

    config = ServerConfig(listen="127.0.0.1:0", admin_socket=tmp_path / "admin.sock")
    listeners = await standby.serve(
        config, AdminConfig(), lambda: NotLeader(leader.address, leader.name), clock, observed
    )
    await eventually(lambda: not holding() and probe.reached, "reached")
    await server.stop(0)
    await eventually(holding, "holding")
    service = start_service(store, clock)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{listeners.port}") as ch:
        call = asyncio.ensure_future(
            seat_pb2_grpc.SeatServiceStub(ch).Acquire(
                seat_pb2.AcquireRequest(user_code="BB", idempotency_key="b"), timeout=DEADLINE
            )
        )
        await asyncio.wait_for(held.wait(), DEADLINE)
        assert not call.done()  # held: a refusal would have ended it
        elected = build(config, service, standby=listeners)
        await elected.start()
        granted = await call
    await elected.stop(0)
    stop_service(service)
    await probe.close()
    assert granted.session_id == 1
