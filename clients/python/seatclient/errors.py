"""Typed errors, each with a message a person can read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from seatclient.events import SessionInfo
from seatclient.v1 import types_pb2

DETAIL_KEY = "seatd-error-bin"


class SeatError(Exception):
    """Base of every error the library raises."""

    reason = "SEAT_ERROR"


class SeatsExhausted(SeatError):
    """Every connection the licence allows is in use.

    The application can offer three ways out: try again later (`retry_after`, or
    `acquire(..., wait=...)`), order one more connection (`order_url`), or disconnect one of
    `sessions` (`acquire(..., evict_session=ID, reason=...)`).

    `sessions` holds the oldest of the `in_use` sessions, as many as the daemon lists (at
    most 50, none when it is set to disclose only the count); `unlisted` is how many more
    there are. What each session shows (IP or not) is the daemon's `refusal_disclosure`.
    """

    reason = "SEATS_EXHAUSTED"

    def __init__(
        self,
        message: str,
        *,
        cap: int,
        in_use: int,
        sessions: Sequence[SessionInfo],
        retry_after: float,
        order_url: str = "",
        queue_position: int = 0,
    ) -> None:
        super().__init__(message)
        self.cap = cap
        self.in_use = in_use
        self.sessions = tuple(sessions)
        self.retry_after = retry_after
        self.order_url = order_url
        self.queue_position = queue_position

    @property
    def unlisted(self) -> int:
        """Sessions in use that the refusal does not list."""
        return max(0, self.in_use - len(self.sessions))


class Evicted(SeatError):
    """The session was disconnected on purpose."""

    reason = "SESSION_EVICTED"

    def __init__(self, message: str, *, reason: str, by: str) -> None:
        super().__init__(message)
        self.evict_reason = reason
        self.by = by


class LeaseLost(SeatError):
    """The daemon no longer holds this session's seat."""

    reason = "LEASE_LOST"


class DaemonUnavailable(SeatError):
    """The seat server cannot be reached."""

    reason = "UNAVAILABLE"


class LicenceInvalid(SeatError):
    """The licence does not allow new connections (expired, or not valid)."""

    reason = "LICENCE_INVALID"


class TakeoverDenied(SeatError):
    """The server's policy does not allow disconnecting that session."""

    reason = "TAKEOVER_DENIED"


class InvalidRequest(SeatError):
    """The daemon refused a malformed request; this is a bug in the caller."""

    reason = "INVALID_ARGUMENT"


def detail_of(exc: grpc.RpcError) -> types_pb2.ErrorDetail:
    trailers: Any = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == DETAIL_KEY and isinstance(value, bytes):
            return types_pb2.ErrorDetail.FromString(value)
    return types_pb2.ErrorDetail()


def from_rpc_error(exc: grpc.RpcError, target: str) -> SeatError:
    """Turn a gRPC error from the daemon into the library's typed error."""
    code: grpc.StatusCode = exc.code()
    detail = detail_of(exc)
    message = detail.message or exc.details() or code.name
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and detail.reason == "SEATS_EXHAUSTED":
        return SeatsExhausted(
            message,
            cap=detail.seat_cap,
            in_use=detail.in_use,
            sessions=[SessionInfo.from_pb(s) for s in detail.sessions],
            retry_after=detail.retry_after.ToTimedelta().total_seconds(),
            order_url=detail.licence.order_url,
            queue_position=detail.queue_position,
        )
    if detail.reason == "SESSION_EVICTED":
        return Evicted(message, reason=detail.ended.reason, by=detail.ended.by)
    if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAUTHENTICATED):
        return LeaseLost(message)
    if code is grpc.StatusCode.PERMISSION_DENIED:
        return TakeoverDenied(message)
    if code is grpc.StatusCode.FAILED_PRECONDITION and detail.reason.startswith("LICENCE"):
        return LicenceInvalid(message)
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidRequest(message)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return DaemonUnavailable(f"the seat server at {target} cannot be reached: {message}")
    return SeatError(message)
