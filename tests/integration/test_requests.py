"""Every malformed request is INVALID_ARGUMENT naming its field, on a real grpc.aio server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
import structlog
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc._cython import cygrpc
from grpc_status import rpc_status
from seatclient import AsyncSeatClient, InvalidRequest
from seatclient.v1 import admin_pb2, seat_pb2

from seatd.service import AcquireRequest, SeatService
from seatd.transport.seat import SeatServicer
from tests.integration.conftest import Running


def acquire(**fields: Any) -> seat_pb2.AcquireRequest:
    request = seat_pb2.AcquireRequest(user_code="AA", idempotency_key="k-AA")
    for name, value in fields.items():
        if isinstance(value, Duration):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


def journal(**filter_fields: Any) -> admin_pb2.JournalFilter:
    return admin_pb2.JournalFilter(**filter_fields)


Call = Callable[[Running], Awaitable[Any]]

MALFORMED: list[tuple[str, Call, str]] = [
    ("empty user code", lambda r: r.seat.Acquire(acquire(user_code=" ")), "user_code"),
    ("long host name", lambda r: r.seat.Acquire(acquire(hostname="h" * 256)), "hostname"),
    (
        "control character in version",
        lambda r: r.seat.Acquire(acquire(client_version="1\x002")),
        "client_version",
    ),
    (
        "no idempotency key",
        lambda r: r.seat.Acquire(acquire(idempotency_key="")),
        "idempotency_key",
    ),
    (
        "long evict reason without an eviction",
        lambda r: r.seat.Acquire(acquire(evict_reason="r" * 257)),
        "evict_reason",
    ),
    (
        "evict id out of range",
        lambda r: r.seat.Acquire(acquire(evict_session_id=2**64 - 1)),
        "evict_session_id",
    ),
    ("wait of 1e15 s", lambda r: r.seat.Acquire(acquire(wait=Duration(seconds=10**15))), "wait"),
    ("negative wait", lambda r: r.seat.Acquire(acquire(wait=Duration(seconds=-1))), "wait"),
    (
        "wait with mixed signs",
        lambda r: r.seat.Acquire(acquire(wait=Duration(seconds=1, nanos=-5))),
        "wait",
    ),
    (
        "release of session 0",
        lambda r: r.seat.Release(seat_pb2.ReleaseRequest(session_id=0, lease_token="t")),
        "session_id",
    ),
    (
        "release without a token",
        lambda r: r.seat.Release(seat_pb2.ReleaseRequest(session_id=1)),
        "lease_token",
    ),
    (
        "release with a huge token",
        lambda r: r.seat.Release(seat_pb2.ReleaseRequest(session_id=1, lease_token="t" * 129)),
        "lease_token",
    ),
    ("evict session 0", lambda r: r.admin.Evict(admin_pb2.EvictRequest()), "session_id"),
    (
        "evict with a long reason",
        lambda r: r.admin.Evict(admin_pb2.EvictRequest(session_id=1, reason="r" * 257)),
        "reason",
    ),
    (
        "token without a name",
        lambda r: r.admin.CreateToken(admin_pb2.CreateTokenRequest(role="admin")),
        "name",
    ),
    (
        "token with an unknown role",
        lambda r: r.admin.CreateToken(admin_pb2.CreateTokenRequest(name="ci", role="root")),
        "role",
    ),
    (
        "revoke without a name",
        lambda r: r.admin.RevokeToken(admin_pb2.RevokeTokenRequest()),
        "name",
    ),
    (
        "empty licence",
        lambda r: r.admin.ImportLicence(admin_pb2.ImportLicenceRequest(licence_text=" ")),
        "licence_text",
    ),
    (
        "licence of 70 KiB",
        lambda r: r.admin.ImportLicence(admin_pb2.ImportLicenceRequest(licence_text="x" * 70_000)),
        "licence_text",
    ),
    (
        "zero active seats",
        lambda r: r.admin.SetActiveSeats(admin_pb2.SetActiveSeatsRequest()),
        "seats",
    ),
    (
        "a million active seats",
        lambda r: r.admin.SetActiveSeats(admin_pb2.SetActiveSeatsRequest(seats=10**6)),
        "seats",
    ),
    ("order of zero seats", lambda r: r.admin.OrderSeats(admin_pb2.OrderSeatsRequest()), "seats"),
    (
        "journal page over 1000",
        lambda r: r.admin.ReadJournal(admin_pb2.ReadJournalRequest(limit=1001)),
        "limit",
    ),
    (
        "journal after the last possible key",
        lambda r: r.admin.ReadJournal(admin_pb2.ReadJournalRequest(after_seq=2**64 - 1)),
        "after_seq",
    ),
    (
        "journal since year 33658",
        lambda r: r.admin.ReadJournal(
            admin_pb2.ReadJournalRequest(filter=journal(since=Timestamp(seconds=10**12)))
        ),
        "filter.since",
    ),
    (
        "journal filter with a long user code",
        lambda r: r.admin.ReadJournal(
            admin_pb2.ReadJournalRequest(filter=journal(user_code="u" * 65))
        ),
        "filter.user_code",
    ),
    (
        "journal filter with 33 kinds",
        lambda r: r.admin.ReadJournal(
            admin_pb2.ReadJournalRequest(filter=journal(kinds=[f"k{i}" for i in range(33)]))
        ),
        "filter.kinds",
    ),
    (
        "journal watch until before year 1",
        lambda r: r.admin.WatchJournal(
            admin_pb2.WatchJournalRequest(filter=journal(until=Timestamp(seconds=-(10**12))))
        ).read(),
        "filter.until",
    ),
]


@pytest.mark.parametrize(
    ("call", "field"), [(c, f) for _, c, f in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
async def test_malformed_request_is_invalid_argument_naming_its_field(
    running: Running, call: Call, field: str
) -> None:
    """Each malformed request answers INVALID_ARGUMENT with ErrorInfo field = its proto name."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(running)
    error = refused.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert (error.details() or "").startswith(f"{field}: ")
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.metadata["field"] == field
    assert running.service.store.journal_entries() == []


async def test_the_holders_text_is_kept_without_surrounding_spaces(running: Running) -> None:
    """User code, name, host name and version sent with spaces around are kept without them."""
    spaced = acquire(user_code=" AA ", user_name=" Ann A ", hostname=" pc-1 ", client_version=" 7 ")
    r = await running.seat.Acquire(spaced)
    shown = r.session
    assert (shown.user_code, shown.user_name, shown.hostname, shown.client_version) == (
        "AA",
        "Ann A",
        "pc-1",
        "7",
    )
    assert running.service.arbiter.get(r.session_id).holder.user_code == "AA"


async def test_keepalive_attach_without_a_session_is_invalid_argument(running: Running) -> None:
    """A keepalive attaching session 0 is INVALID_ARGUMENT naming attach.session_id."""
    call = running.seat.Keepalive()
    await call.write(
        seat_pb2.KeepaliveRequest(attach=seat_pb2.Attach(session_id=0, lease_token="t"))
    )
    assert await call.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (await call.details()).startswith("attach.session_id: ")


class GoneContext:
    """A keepalive's server side whose client has cancelled: the attach answer went out, the
    next write fails inside grpc as it does when it races the cancel."""

    def __init__(self) -> None:
        self.written: list[seat_pb2.KeepaliveResponse] = []
        self.aborted = False

    async def write(self, response: seat_pb2.KeepaliveResponse) -> None:
        if self.written:
            raise cygrpc.ExecuteBatchError('Failed "execute_batch": (SendMessageOperation,)')
        self.written.append(response)

    async def abort(self, *args: object) -> None:
        self.aborted = True
        raise AssertionError("a write to a cancelled client is no status to send")

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"


async def test_keepalive_write_after_the_client_cancelled_is_no_internal_error(
    service: SeatService,
) -> None:
    """A pong written after the client went away leaves grpc's error to grpc: no INTERNAL, no
    rpc.internal_error log, and the session is detached for the reattach grace."""
    seat = await service.acquire(AcquireRequest("AA", "", "", "", "k", "127.0.0.1"))
    session = seat.session

    async def requests() -> Any:
        yield seat_pb2.KeepaliveRequest(
            attach=seat_pb2.Attach(session_id=session.id, lease_token=session.token)
        )
        yield seat_pb2.KeepaliveRequest(ping=seat_pb2.Ping(seq=1))

    context = GoneContext()
    with structlog.testing.capture_logs() as logs, pytest.raises(cygrpc.ExecuteBatchError):
        await SeatServicer(service).Keepalive(requests(), context)  # type: ignore[arg-type]
    assert not context.aborted
    assert [e["event"] for e in logs if e["log_level"] == "error"] == []
    assert not service.arbiter.get(session.id).attached


@pytest.mark.parametrize("wait", [1e15, float("nan"), float("inf"), -1.0])
async def test_library_wait_out_of_range_is_an_invalid_request(
    running: Running, wait: float
) -> None:
    """The library turns a wait out of range into InvalidRequest naming `wait`: NaN, infinity
    and negatives before sending, 1e15 s from the daemon's INVALID_ARGUMENT."""
    async with AsyncSeatClient(f"127.0.0.1:{running.port}") as client:
        with pytest.raises(InvalidRequest, match=r"^wait: "):
            await client.acquire(user_code="AA", wait=wait)
