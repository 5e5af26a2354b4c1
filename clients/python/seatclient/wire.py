"""What the blocking and asyncio APIs share: requests, channel options, responses."""

from __future__ import annotations

import math
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import grpc

from seatclient.contract import QUEUE_POSITION_KEY
from seatclient.errors import InvalidRequest
from seatclient.events import Draining, EvictedEvent, IdleWarning, LicenceChanged, SeatEvent
from seatclient.lease import Terms
from seatclient.v1 import seat_pb2, seat_pb2_grpc, types_pb2

# Detect a dead connection within a keepalive interval or so; the daemon never refuses pings.
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    # Each client owns its connection, as each workstation does: grpc would otherwise share
    # one between clients of a process, and one client's reconnect backoff with the others.
    ("grpc.use_local_subchannel_pool", 1),
]


# The longest google.protobuf.Duration: 10,000 years.
MAX_DURATION = 315_576_000_000
# Idle time reported on a keepalive, at most (the daemon reads no more than a year).
MAX_IDLE = 365 * 86400.0


def channel(grpc_module: Any, target: str, credentials: Any) -> Any:
    """A channel (blocking `grpc` or `grpc.aio`) with the keepalive options above."""
    if credentials is None:
        return grpc_module.insecure_channel(target, options=CHANNEL_OPTIONS)
    return grpc_module.secure_channel(target, credentials, options=CHANNEL_OPTIONS)


def acquire_as_stream(channel: Any) -> Any:
    """Acquire, called as a unary-stream method.

    grpc (blocking and asyncio) delivers a unary call's headers only together with its
    response. On the wire a unary call is a stream of one message, so this view of the same
    method gets the queue-position header the moment the daemon sends it.
    """
    return channel.unary_stream(
        "/seatd.v1.SeatService/Acquire",
        request_serializer=seat_pb2.AcquireRequest.SerializeToString,
        response_deserializer=seat_pb2.AcquireResponse.FromString,
    )


@dataclass(frozen=True, slots=True)
class Link:
    """One seat server's channel and what is called on it."""

    channel: Any
    stub: seat_pb2_grpc.SeatServiceStub
    acquire_stream: Any

    @classmethod
    def open(cls, grpc_module: Any, target: str, credentials: Any) -> Link:
        ch = channel(grpc_module, target, credentials)
        return cls(ch, seat_pb2_grpc.SeatServiceStub(ch), acquire_as_stream(ch))


def queue_position(metadata: Any) -> int:
    """The position the daemon announced when the request joined its wait queue, or 0."""
    for key, value in metadata or ():
        if key == QUEUE_POSITION_KEY:
            return int(value)
    return 0


def wait_request(request: seat_pb2.AcquireRequest) -> seat_pb2.WaitForSeatRequest:
    return seat_pb2.WaitForSeatRequest(acquire=request)


def wait_update(
    update: seat_pb2.WaitForSeatResponse,
) -> tuple[int, seat_pb2.AcquireResponse | None]:
    """A WaitForSeat message: the new queue position (0 if none), or the grant. Draining is
    followed by the UNAVAILABLE status that ends the call, which the caller retries."""
    kind = update.WhichOneof("event")
    if kind == "queued":
        return update.queued.position, None
    if kind == "granted":
        return 0, update.granted
    return 0, None


class NoGrant(grpc.RpcError):
    """WaitForSeat ended OK without a grant: a daemon breaking the contract."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.INTERNAL

    def details(self) -> str:
        return "the seat server ended the wait without a grant or a refusal"


def library_version() -> str:
    try:
        return metadata.version("seat-client")
    except metadata.PackageNotFoundError:
        return "0"


def acquire_request(
    *,
    user_code: str,
    user_name: str,
    hostname: str | None,
    client_version: str,
    evict_session: int | None,
    reason: str,
    wait: float | None,
) -> seat_pb2.AcquireRequest:
    request = seat_pb2.AcquireRequest(
        user_code=user_code,
        user_name=user_name,
        hostname=hostname if hostname is not None else socket.gethostname(),
        client_version=client_version or f"seat-client/{library_version()}",
        # One key per login, kept across retries: a retry after a lost reply is the same seat.
        idempotency_key=secrets.token_urlsafe(18),
        evict_session_id=evict_session or 0,
        evict_reason=reason,
    )
    if wait:
        # Checked here only as far as a Duration can carry it; the daemon judges the bound.
        if not (math.isfinite(wait) and 0 <= wait <= MAX_DURATION):
            raise InvalidRequest(f"wait: must be a number of seconds from 0, got {wait!r}")
        request.wait.FromNanoseconds(round(wait * 1e9))
    return request


@dataclass(frozen=True, slots=True)
class Granted:
    session_id: int
    token: str
    terms: Terms
    licence: types_pb2.LicenceSummary
    started_at: datetime


def granted(response: seat_pb2.AcquireResponse) -> Granted:
    return Granted(
        session_id=response.session_id,
        token=response.lease_token,
        terms=Terms(
            ttl=response.ttl.ToTimedelta().total_seconds(),
            keepalive_interval=response.keepalive_interval.ToTimedelta().total_seconds(),
            reattach_grace=response.reattach_grace.ToTimedelta().total_seconds(),
        ),
        licence=response.licence,
        started_at=response.session.started_at.ToDatetime(tzinfo=UTC),
    )


def attach_request(session_id: int, token: str) -> seat_pb2.KeepaliveRequest:
    return seat_pb2.KeepaliveRequest(
        attach=seat_pb2.Attach(session_id=session_id, lease_token=token)
    )


def ping_request(seq: int, idle: float | None = None) -> seat_pb2.KeepaliveRequest:
    ping = seat_pb2.Ping(seq=seq)
    if idle is not None:
        ping.idle.FromNanoseconds(round(min(idle, MAX_IDLE) * 1e9))
    return seat_pb2.KeepaliveRequest(ping=ping)


def pushed_event(response: seat_pb2.KeepaliveResponse) -> SeatEvent | None:
    """The event a keepalive response carries for the application, if any."""
    kind = response.WhichOneof("event")
    if kind == "evicted":
        e = response.evicted
        return EvictedEvent(e.session_id, e.reason, e.by, e.at.ToDatetime(tzinfo=UTC))
    if kind == "licence_changed":
        return LicenceChanged(response.licence_changed.licence)
    if kind == "idle_warning":
        w = response.idle_warning
        return IdleWarning(
            w.evict_at.ToDatetime(tzinfo=UTC),
            w.reason,
            w.idle.ToTimedelta().total_seconds(),
            w.withdrawn,
        )
    if kind == "draining":
        return Draining(response.draining.reattach_after.ToTimedelta().total_seconds())
    return None
