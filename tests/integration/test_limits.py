"""Bounds on what one LAN host can make the daemon hold, over a real grpc.aio server."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from seatclient.v1 import seat_pb2, seat_pb2_grpc

from seatd.limits import PING_BURST
from seatd.repeats import RefusalConfig
from seatd.server import SEAT_SERVICE, ServerConfig, build
from seatd.service import SeatService
from seatd.transport.handlers import add_service
from seatd.transport.health import serve_health_and_reflection
from seatd.transport.peers import PeerCallLimit
from seatd.transport.seat import SeatServicer
from seatd.waitqueue import QueueConfig
from tests.fakes import FakeClock
from tests.integration.conftest import Running, until
from tests.integration.test_grpc import acquire, attach, ping

# Only reached when the bound under test is missing.
BOUNDED = 10.0
# A wait short enough for a test, long enough to tell from an answer given at once.
SHORT_WAIT = duration_pb2.Duration(nanos=500_000_000)
# How early the event loop may run a timer (its clock's resolution, and then some).
TIMER_SLACK = 0.05


def duration(seconds: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=seconds)


D = TypeVar("D", error_details_pb2.ErrorInfo, error_details_pb2.RetryInfo)


def detail(exc: grpc.aio.AioRpcError, kind: type[D]) -> D | None:
    """The refusal's standard detail of type `kind`, if it has one."""
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None
    for packed in status.details:
        found = kind()
        if packed.Unpack(found):
            return found
    return None


def reason_of(exc: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a refusal."""
    info = detail(exc, error_details_pb2.ErrorInfo)
    return str(info.reason) if info else ""


def retry_after(exc: grpc.aio.AioRpcError) -> float:
    """The RetryInfo delay of a refusal, in seconds."""
    info = detail(exc, error_details_pb2.RetryInfo)
    return float(info.retry_delay.ToTimedelta().total_seconds()) if info else 0.0


async def test_full_wait_queue_refuses_with_queue_full(running: Running) -> None:
    """A waiting acquire beyond queue.max_waiting is RESOURCE_EXHAUSTED with reason QUEUE_FULL."""
    running.service.queue.reconfigure(QueueConfig(max_waiting=1, max_waiting_per_peer=0))
    await running.seat.Acquire(acquire("AA"))
    await running.seat.Acquire(acquire("BB"))
    waiting = running.seat.Acquire(acquire("W1", wait=duration(30)))
    await until(lambda: running.service.waiting == 1)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await running.seat.Acquire(acquire("W2", wait=SHORT_WAIT))
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason_of(refused.value) == "QUEUE_FULL"
    waiting.cancel()


async def full_queue(running: Running) -> grpc.aio.UnaryUnaryCall[Any, Any]:
    """Both seats held and the one place in the queue taken: the waiter's call."""
    running.service.queue.reconfigure(QueueConfig(max_waiting=1, max_waiting_per_peer=0))
    await running.seat.Acquire(acquire("AA"))
    await running.seat.Acquire(acquire("BB"))
    waiting = running.seat.Acquire(acquire("W1", wait=duration(30)))
    await until(lambda: running.service.waiting == 1)
    return waiting


async def refused_after(call: Any) -> tuple[grpc.aio.AioRpcError, float]:
    """The refusal `call` ends with, and how long it took (bounded)."""
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await asyncio.wait_for(call, BOUNDED)
    return refused.value, time.monotonic() - started


async def test_a_wait_refused_for_a_full_queue_is_answered_when_its_wait_runs_out(
    running: Running,
) -> None:
    """QUEUE_FULL to an acquire that asked to wait comes when that wait has run out, as if it
    had queued in vain: a caller asking again at once asks once per wait."""
    waiting = await full_queue(running)
    refused, took = await refused_after(running.seat.Acquire(acquire("W2", wait=SHORT_WAIT)))
    assert reason_of(refused) == "QUEUE_FULL"
    assert took >= SHORT_WAIT.ToTimedelta().total_seconds() - TIMER_SLACK
    waiting.cancel()


async def test_a_rate_limited_wait_is_answered_when_its_wait_runs_out(running: Running) -> None:
    """RATE_LIMITED to an acquire that asked to wait also comes when that wait has run out."""
    running.service.set_refusal_limits(RefusalConfig(burst=1, per_second=0.001))
    await running.seat.Acquire(acquire("AA"))
    await running.seat.Acquire(acquire("BB"))
    with pytest.raises(grpc.aio.AioRpcError):
        await running.seat.Acquire(acquire("CC"))  # refused: the address's one token spent
    refused, took = await refused_after(running.seat.Acquire(acquire("W", wait=SHORT_WAIT)))
    assert reason_of(refused) == "RATE_LIMITED"
    assert took >= SHORT_WAIT.ToTimedelta().total_seconds() - TIMER_SLACK


async def test_refusals_beyond_max_held_are_answered_at_once(running: Running) -> None:
    """With queue.max_held calls already held, a refused wait is answered at once."""
    waiting = await full_queue(running)
    running.service.tarpit.max_held = 0
    refused, _ = await refused_after(running.seat.Acquire(acquire("W2", wait=duration(3600))))
    assert reason_of(refused) == "QUEUE_FULL"
    waiting.cancel()


async def test_draining_answers_held_refusals_at_once(running: Running) -> None:
    """A drain answers every held refusal now (UNAVAILABLE, DRAINING), not at its wait's end."""
    waiting = await full_queue(running)
    held = asyncio.ensure_future(running.seat.Acquire(acquire("W2", wait=duration(3600))))
    await until(lambda: len(running.service.tarpit) == 1)
    await running.service.drain()
    refused, _ = await refused_after(held)
    assert refused.code() is grpc.StatusCode.UNAVAILABLE and reason_of(refused) == "DRAINING"
    waiting.cancel()


async def test_application_ping_flood_ends_the_stream(running: Running) -> None:
    """Keepalive pings sent back to back end the stream with RESOURCE_EXHAUSTED, PING_FLOOD."""
    _, ended = await flood(running)
    assert ended.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason_of(ended) == "PING_FLOOD"


async def read_all(call: grpc.aio.StreamStreamCall[Any, Any]) -> None:
    while await call.read() is not grpc.aio.EOF:
        pass


async def flood(running: Running) -> tuple[seat_pb2.AcquireResponse, grpc.aio.AioRpcError]:
    """A session whose stream pinged back to back, and the error its stream ended with."""
    r = await running.seat.Acquire(acquire("AA"))
    call = running.seat.Keepalive()
    await call.write(attach(r.session_id, r.lease_token))
    await call.read()
    # One more than the burst: the last one breaks the budget, and nothing is written after.
    for seq in range(1, int(PING_BURST) + 2):
        await call.write(ping(seq))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await asyncio.wait_for(read_all(call), BOUNDED)
    return r, ended.value


async def test_a_reattach_within_the_ping_flood_penalty_is_refused_at_once(
    running: Running, clock: FakeClock
) -> None:
    """After PING_FLOOD, the session's reattach is refused (PING_FLOOD, the time left as its
    retry hint) until the penalty, half the reattach grace, has passed; then it attaches."""
    r, _ = await flood(running)
    penalty = running.service.arbiter.terms.reattach_grace / 2
    call = running.seat.Keepalive()
    await call.write(attach(r.session_id, r.lease_token))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await asyncio.wait_for(read_all(call), BOUNDED)
    assert reason_of(refused.value) == "PING_FLOOD"
    assert retry_after(refused.value) == penalty
    clock.advance(penalty)
    call = running.seat.Keepalive()
    await call.write(attach(r.session_id, r.lease_token))
    answer = await asyncio.wait_for(call.read(), BOUNDED)
    assert answer.WhichOneof("event") == "attached"
    call.cancel()


async def test_transport_ping_flood_is_sent_away(running: Running) -> None:
    """A peer sending HTTP/2 pings far faster than allowed gets GOAWAY (too_many_pings)."""
    pinger = grpc.aio.insecure_channel(
        f"127.0.0.1:{running.port}",
        options=[
            ("grpc.keepalive_time_ms", 50),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ],
    )
    r = await running.seat.Acquire(acquire("AA"))
    call = seat_pb2_grpc.SeatServiceStub(pinger).Keepalive()
    await call.write(attach(r.session_id, r.lease_token))
    await call.read()
    with pytest.raises(grpc.aio.AioRpcError) as dropped:
        async with asyncio.timeout(BOUNDED):
            await call.read()
    assert dropped.value.code() is grpc.StatusCode.UNAVAILABLE
    await pinger.close()


@pytest.fixture
async def capped_channel(service: SeatService) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to the workstation service, health and reflection served as the daemon
    serves them, with at most two calls per peer, loopback included."""
    server = grpc.aio.server()
    registry = PeerCallLimit(2, service.clock, exempt_loopback=False).capped(server)
    add_service(
        registry,
        seat_pb2.DESCRIPTOR.services_by_name["SeatService"],
        SeatServicer(service),
        service.clock,
    )
    serve_health_and_reflection(registry, [SEAT_SERVICE])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    await server.stop(0)


@pytest.fixture
def capped(capped_channel: grpc.aio.Channel) -> seat_pb2_grpc.SeatServiceStub:
    """The workstation service with at most two calls per peer, loopback included."""
    return seat_pb2_grpc.SeatServiceStub(capped_channel)


async def kept_alive(stub: seat_pb2_grpc.SeatServiceStub, user: str) -> Any:
    """A seat taken for `user` and its keepalive stream attached (an open call)."""
    r = await stub.Acquire(acquire(user))
    call = stub.Keepalive()
    await call.write(attach(r.session_id, r.lease_token))
    await call.read()
    return call


async def test_one_peer_cannot_hold_more_calls_than_its_cap(
    service: SeatService, capped: seat_pb2_grpc.SeatServiceStub
) -> None:
    """Beyond server.max_calls_per_peer open calls, a new call is refused (TOO_MANY_CALLS);
    once one ends, the peer may call again."""
    streams = [capped.Keepalive() for _ in range(2)]
    for s in streams:
        await s.write(attach(999, "x"))
    await until(lambda: service.stream_count == 0 and all(s.done() for s in streams))
    held = [await kept_alive(capped, user) for user in ("AA", "BB")]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await capped.Acquire(acquire("CC"))
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason_of(refused.value) == "TOO_MANY_CALLS"
    held[0].cancel()
    await until(lambda: service.stream_count == 1)
    assert await capped.GetLicence(seat_pb2.GetLicenceRequest())


async def test_health_checks_count_against_the_peers_cap(
    service: SeatService, capped_channel: grpc.aio.Channel
) -> None:
    """Health checking, registered through grpc's own helper, is capped per peer like seats."""
    capped = seat_pb2_grpc.SeatServiceStub(capped_channel)
    health = health_pb2_grpc.HealthStub(capped_channel)
    assert (await health.Check(health_pb2.HealthCheckRequest())).status
    held = [await kept_alive(capped, user) for user in ("AA", "BB")]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await health.Check(health_pb2.HealthCheckRequest())
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason_of(refused.value) == "TOO_MANY_CALLS"
    for call in held:
        call.cancel()


async def test_connection_that_never_speaks_is_closed(service: SeatService, tmp_path: Path) -> None:
    """A TCP connection that never starts HTTP/2 is closed after server.handshake_timeout."""
    config = ServerConfig(
        listen="127.0.0.1:0", admin_socket=tmp_path / "admin.sock", handshake_timeout=1.0
    )
    servers = build(config, service)
    await servers.start()
    silent = socket.create_connection(("127.0.0.1", servers.port))
    try:
        closed = await asyncio.to_thread(closes_within, silent, BOUNDED)
    finally:
        silent.close()
        await servers.stop(0)
    assert closed


def closes_within(sock: socket.socket, seconds: float) -> bool:
    """Read what the server sends (its HTTP/2 settings) until it closes, or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            return False
    return False


def test_start_raises_the_soft_descriptor_limit_to_the_hard_one() -> None:
    """raise_limit lifts a low soft RLIMIT_NOFILE (systemd's 1024) to the hard limit."""
    out = subprocess.run(
        ["prlimit", "--nofile=256:512", "--", sys.executable, "-c", RAISE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == ["512", "512"], out.stderr


RAISE = (
    "import resource; from seatd import fds; "
    "print(fds.raise_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
)
