"""The gRPC surface on a real grpc.aio server (port 0) over a real LMDB store."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from seatclient.v1 import admin_pb2, seat_pb2, types_pb2

from tests.integration.conftest import Running


def acquire(user: str = "AA", key: str | None = None, **kw: Any) -> seat_pb2.AcquireRequest:
    return seat_pb2.AcquireRequest(
        user_code=user,
        user_name=f"{user} name",
        hostname="PC-1",
        client_version="15.2",
        idempotency_key=key or f"k-{user}",
        **kw,
    )


async def sessions(r: Running) -> list[tuple[int, str]]:
    listed = await r.admin.ListSessions(admin_pb2.ListSessionsRequest())
    return [(s.id, s.user_code) for s in listed.sessions]


def attach(sid: int, token: str) -> seat_pb2.KeepaliveRequest:
    return seat_pb2.KeepaliveRequest(attach=seat_pb2.Attach(session_id=sid, lease_token=token))


def ping(seq: int) -> seat_pb2.KeepaliveRequest:
    return seat_pb2.KeepaliveRequest(ping=seat_pb2.Ping(seq=seq))


async def test_acquire_returns_lease_terms_and_lists_the_session(running: Running) -> None:
    """A grant carries id, token, TTL and keepalive interval; the admin sees the caller's IP."""
    r = await running.seat.Acquire(acquire())
    assert r.session_id == 1 and r.lease_token
    assert (r.ttl.seconds, r.keepalive_interval.seconds, r.reattach_grace.seconds) == (30, 10, 10)
    listed = await running.admin.ListSessions(admin_pb2.ListSessionsRequest())
    assert [(s.id, s.ip, s.hostname) for s in listed.sessions] == [(1, "127.0.0.1", "PC-1")]
    assert (listed.seat_cap, listed.in_use) == (2, 1)


async def test_full_house_is_resource_exhausted_with_rich_details(running: Running) -> None:
    """At capacity: RESOURCE_EXHAUSTED, ErrorInfo SEATS_EXHAUSTED with cap and in use,
    RetryInfo, and the live sessions (once, in the seatd-error-bin trailer)."""
    await running.seat.Acquire(acquire("AA"))
    await running.seat.Acquire(acquire("BB"))
    call = running.seat.Acquire(acquire("CC"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    status = await rpc_status.aio.from_call(call)
    found: dict[str, Any] = {}
    for detail in status.details:
        for cls in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.RetryInfo,
            types_pb2.ErrorDetail,
        ):
            if detail.Is(cls.DESCRIPTOR):
                msg = cls()
                detail.Unpack(msg)
                found[cls.__name__] = msg
    info = found["ErrorInfo"]
    assert (info.reason, dict(info.metadata)) == ("SEATS_EXHAUSTED", {"cap": "2", "in_use": "2"})
    assert found["RetryInfo"].retry_delay.seconds == 10
    assert found["ErrorDetail"].in_use == 2 and not found["ErrorDetail"].sessions
    [raw] = [v for k, v in await call.trailing_metadata() if k == "seatd-error-bin"]
    listed = types_pb2.ErrorDetail.FromString(raw).sessions  # type: ignore[arg-type]
    assert [s.user_code for s in listed] == ["AA", "BB"]


async def test_keepalive_attaches_and_answers_pings_with_the_ttl(running: Running) -> None:
    """The first message attaches; each ping is answered with its seq and the TTL."""
    r = await running.seat.Acquire(acquire())
    call = running.seat.Keepalive()
    await call.write(attach(r.session_id, r.lease_token))
    assert (await call.read()).attached.session_id == r.session_id
    await call.write(ping(7))
    pong = (await call.read()).pong
    assert (pong.seq, pong.ttl.seconds) == (7, 30)
    call.cancel()


async def test_evicted_stream_gets_reason_then_closes(running: Running) -> None:
    """An admin eviction reaches the stream as Evicted(reason, by, at); then the stream ends."""
    r = await running.seat.Acquire(acquire())
    call = running.seat.Keepalive()
    await call.write(attach(r.session_id, r.lease_token))
    await call.read()
    await running.admin.Evict(admin_pb2.EvictRequest(session_id=r.session_id, reason="lunch"))
    evicted = (await call.read()).evicted
    assert (evicted.session_id, evicted.reason, evicted.by) == (
        r.session_id,
        "lunch",
        "local-admin-socket",
    )
    assert await call.read() is grpc.aio.EOF
    assert await call.code() is grpc.StatusCode.OK


async def test_evict_default_reason(running: Running) -> None:
    """An eviction without a reason says "Connection limit exceeded"."""
    r = await running.seat.Acquire(acquire())
    out = await running.admin.Evict(admin_pb2.EvictRequest(session_id=r.session_id))
    assert out.ended.reason == "Connection limit exceeded"


async def test_wrong_token_is_unauthenticated_and_changes_nothing(running: Running) -> None:
    """Attach and release with a wrong token are UNAUTHENTICATED; the session stays."""
    r = await running.seat.Acquire(acquire())
    call = running.seat.Keepalive()
    await call.write(attach(r.session_id, "not-the-token"))
    assert await call.code() is grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await running.seat.Release(
            seat_pb2.ReleaseRequest(session_id=r.session_id, lease_token="nope")
        )
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert await sessions(running) == [(r.session_id, "AA")]


async def test_unknown_session_is_not_found(running: Running) -> None:
    """Attach, release and evict of a session that never existed are NOT_FOUND."""
    call = running.seat.Keepalive()
    await call.write(attach(404, "t"))
    assert await call.code() is grpc.StatusCode.NOT_FOUND
    for rpc in (
        running.seat.Release(seat_pb2.ReleaseRequest(session_id=404, lease_token="t")),
        running.admin.Evict(admin_pb2.EvictRequest(session_id=404)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await rpc
        assert refused.value.code() is grpc.StatusCode.NOT_FOUND


async def test_evicted_token_reattach_says_why(running: Running) -> None:
    """Reattaching with an evicted session's token is NOT_FOUND with the eviction's reason."""
    r = await running.seat.Acquire(acquire())
    await running.admin.Evict(admin_pb2.EvictRequest(session_id=r.session_id, reason="audit"))
    call = running.seat.Keepalive()
    await call.write(attach(r.session_id, r.lease_token))
    assert await call.code() is grpc.StatusCode.NOT_FOUND
    trailers = dict(await call.trailing_metadata())
    detail = types_pb2.ErrorDetail.FromString(trailers["seatd-error-bin"])
    assert (detail.reason, detail.ended.reason, detail.ended.by) == (
        "SESSION_EVICTED",
        "audit",
        "local-admin-socket",
    )


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"user_code": ""}, "user_code"),
        ({"user_code": "x" * 65}, "user_code"),
        ({"user_name": "bad\x07name"}, "user_name"),
        ({"idempotency_key": ""}, "idempotency_key"),
    ],
)
async def test_malformed_acquire_is_invalid_argument(
    running: Running, fields: dict[str, str], named: str
) -> None:
    """A malformed acquire is INVALID_ARGUMENT naming the field; nothing is stored."""
    request = acquire()
    for key, value in fields.items():
        setattr(request, key, value)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await running.seat.Acquire(request)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert named in (refused.value.details() or "")
    assert await sessions(running) == []
    assert running.service.store.journal_entries() == []


async def test_keepalive_must_start_with_attach(running: Running) -> None:
    """A stream whose first message is a ping is INVALID_ARGUMENT."""
    call = running.seat.Keepalive()
    await call.write(ping(1))
    assert await call.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_release_is_idempotent(running: Running) -> None:
    """Release frees the seat once; a second release answers released=false."""
    r = await running.seat.Acquire(acquire())
    req = seat_pb2.ReleaseRequest(session_id=r.session_id, lease_token=r.lease_token)
    assert (await running.seat.Release(req)).released is True
    assert (await running.seat.Release(req)).released is False
    assert await sessions(running) == []


async def test_dropped_stream_shortens_the_lease(running: Running) -> None:
    """When the stream is cancelled, the session is detached with the reattach grace."""
    r = await running.seat.Acquire(acquire())
    call = running.seat.Keepalive()
    await call.write(attach(r.session_id, r.lease_token))
    await call.read()
    call.cancel()
    service = running.service
    for _ in range(200):
        if not service.arbiter.get(r.session_id).attached:
            break
        await asyncio.sleep(0.01)
    session = service.arbiter.get(r.session_id)
    assert not session.attached
    assert session.expires_at == pytest.approx(service.clock.monotonic() + 10)


async def test_health_and_reflection_are_served(running: Running) -> None:
    """Standard health checking answers SERVING; reflection lists SeatService."""
    health = health_pb2_grpc.HealthStub(running.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(running.channel)
    call = stub.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    listed = await call.read()
    names = {s.name for s in listed.list_services_response.service}
    assert "seatd.v1.SeatService" in names
    assert "seatd.v1.AdminService" not in names
    call.cancel()


async def test_a_7000_character_claimed_user_is_refused(running: Running) -> None:
    """x-seatd-user on the local socket is bounded: 7,000 characters is INVALID_ARGUMENT."""
    r = await running.seat.Acquire(acquire())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await running.admin.Evict(
            admin_pb2.EvictRequest(session_id=r.session_id),
            metadata=(("x-seatd-user", "x" * 7000),),
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert await sessions(running) == [(r.session_id, "AA")]
