"""A stream the daemon ends always says why, and an ending's reason goes only to its holder
(issue 17, section 2), on a real grpc.aio server over a real LMDB store."""

from __future__ import annotations

import grpc
import pytest
from seatclient.contract import DETAIL_KEY, Reason
from seatclient.v1 import admin_pb2, seat_pb2, types_pb2

from tests.fakes import FakeClock
from tests.integration.conftest import Running
from tests.integration.test_grpc import acquire, attach


def reason_of(trailers: grpc.aio.Metadata | None) -> str:
    detail = dict(trailers or ())[DETAIL_KEY]
    assert isinstance(detail, bytes)
    return types_pb2.ErrorDetail.FromString(detail).reason


async def test_second_attach_ends_the_first_stream_as_superseded(running: Running) -> None:
    """The replaced stream ends ABORTED with STREAM_SUPERSEDED, not OK; the new one lives."""
    r = await running.seat.Acquire(acquire())
    first = running.seat.Keepalive()
    await first.write(attach(r.session_id, r.lease_token))
    await first.read()
    second = running.seat.Keepalive()
    await second.write(attach(r.session_id, r.lease_token))
    assert (await second.read()).HasField("attached")
    assert await first.code() is grpc.StatusCode.ABORTED
    assert reason_of(await first.trailing_metadata()) == Reason.STREAM_SUPERSEDED
    second.cancel()


async def test_expired_lease_ends_the_stream_not_found_expired(
    running: Running, clock: FakeClock
) -> None:
    """A stream whose lease expired ends NOT_FOUND with SESSION_EXPIRED, not OK."""
    r = await running.seat.Acquire(acquire())
    call = running.seat.Keepalive()
    await call.write(attach(r.session_id, r.lease_token))
    await call.read()
    clock.advance(60)
    assert [e.session.id for e in await running.service.reap()] == [r.session_id]
    assert await call.code() is grpc.StatusCode.NOT_FOUND
    assert reason_of(await call.trailing_metadata()) == Reason.SESSION_EXPIRED


async def test_wrong_token_on_an_evicted_session_learns_nothing(running: Running) -> None:
    """Attaching to an evicted session with a wrong token is UNAUTHENTICATED, without the
    eviction's reason or who did it."""
    r = await running.seat.Acquire(acquire())
    await running.admin.Evict(admin_pb2.EvictRequest(session_id=r.session_id, reason="audit"))
    call = running.seat.Keepalive()
    await call.write(attach(r.session_id, "bogus"))
    assert await call.code() is grpc.StatusCode.UNAUTHENTICATED
    trailers = await call.trailing_metadata()
    assert reason_of(trailers) == Reason.INVALID_LEASE_TOKEN
    assert b"audit" not in dict(trailers or ())[DETAIL_KEY]


async def test_release_of_an_ended_session_with_a_wrong_token_is_unauthenticated(
    running: Running,
) -> None:
    """Releasing an ended session with a wrong token is refused, not `released: false`;
    its holder still gets `released: false`."""
    r = await running.seat.Acquire(acquire())
    mine = seat_pb2.ReleaseRequest(session_id=r.session_id, lease_token=r.lease_token)
    assert (await running.seat.Release(mine)).released
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await running.seat.Release(
            seat_pb2.ReleaseRequest(session_id=r.session_id, lease_token="bogus")
        )
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert not (await running.seat.Release(mine)).released
