"""Waiting for a seat: the position streams as it changes, and a draining daemon tells its
waiters to queue again (issue 17, section 2), on a real grpc.aio server."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from seatclient import AsyncSeatClient
from seatclient.contract import DETAIL_KEY, QUEUE_POSITION_KEY, Reason
from seatclient.v1 import seat_pb2, types_pb2

from tests.integration.conftest import Running, until
from tests.integration.test_grpc import acquire


def waiting(user: str, seconds: int = 30) -> seat_pb2.WaitForSeatRequest:
    return seat_pb2.WaitForSeatRequest(acquire=acquire(user, wait=Duration(seconds=seconds)))


async def full_house(r: Running) -> list[seat_pb2.AcquireResponse]:
    return [await r.seat.Acquire(acquire(user)) for user in ("AA", "BB")]


def reason_of(trailers: grpc.aio.Metadata | None) -> str:
    detail = dict(trailers or ())[DETAIL_KEY]
    assert isinstance(detail, bytes)
    return types_pb2.ErrorDetail.FromString(detail).reason


async def test_waiter_hears_its_position_change_then_its_grant(running: Running) -> None:
    """WaitForSeat sends the position it joined at, each change, then the grant."""
    held = await full_house(running)
    first = running.seat.WaitForSeat(waiting("W1"))
    assert (await first.read()).queued.position == 1
    second = running.seat.WaitForSeat(waiting("W2"))
    assert (await second.read()).queued.position == 2
    first.cancel()
    assert (await second.read()).queued.position == 1
    await running.seat.Release(
        seat_pb2.ReleaseRequest(session_id=held[0].session_id, lease_token=held[0].lease_token)
    )
    granted = (await second.read()).granted
    assert (granted.session.user_code, granted.queue_position) == ("W2", 2)
    assert await second.code() is grpc.StatusCode.OK


async def test_free_seat_is_granted_without_a_position(running: Running) -> None:
    """With a seat free, WaitForSeat answers the grant alone."""
    call = running.seat.WaitForSeat(waiting("W1"))
    assert (await call.read()).WhichOneof("event") == "granted"
    assert await call.code() is grpc.StatusCode.OK


async def test_draining_daemon_tells_its_waiters_to_queue_again(running: Running) -> None:
    """A drain sends waiters Draining and ends them UNAVAILABLE (DRAINING) at once, on the
    streaming and the unary wait alike."""
    await full_house(running)
    streaming = running.seat.WaitForSeat(waiting("W1"))
    assert (await streaming.read()).queued.position == 1
    unary = running.seat.Acquire(acquire("W2", wait=Duration(seconds=30)))
    await until(lambda: running.service.waiting == 2)
    await running.service.drain()
    assert (await streaming.read()).draining.reattach_after.seconds == 10
    assert await streaming.code() is grpc.StatusCode.UNAVAILABLE
    assert reason_of(await streaming.trailing_metadata()) == Reason.DRAINING
    assert await unary.code() is grpc.StatusCode.UNAVAILABLE
    assert reason_of(await unary.trailing_metadata()) == Reason.DRAINING


async def test_library_waits_through_acquire_on_a_daemon_without_wait_for_seat() -> None:
    """Against an older daemon (WaitForSeat UNIMPLEMENTED), `acquire(wait=...)` falls back
    to Acquire with `wait` and hears the position it joined at."""

    async def acquire_only(request: seat_pb2.AcquireRequest, context: Any) -> Any:
        await context.send_initial_metadata(((QUEUE_POSITION_KEY, "3"),))
        # What is left of the wait, less a margin, so the refusal beats the call's deadline.
        assert 4 <= request.wait.ToTimedelta().total_seconds() < 5
        return seat_pb2.AcquireResponse(session_id=5, lease_token="t", ttl=Duration(seconds=30))

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "seatd.v1.SeatService",
                {
                    "Acquire": grpc.unary_unary_rpc_method_handler(
                        acquire_only,
                        request_deserializer=seat_pb2.AcquireRequest.FromString,
                        response_serializer=seat_pb2.AcquireResponse.SerializeToString,
                    )
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    positions: list[int] = []
    try:
        client = AsyncSeatClient(f"127.0.0.1:{port}", timeout=5)
        seat = await client.acquire(user_code="AA", wait=5, on_queued=positions.append)
        assert (seat.session_id, positions) == (5, [3])
        await client.close()
    finally:
        await server.stop(0)
