"""Domain errors -> gRPC statuses with rich details, through one table.

Every refusal carries the standard details (`google.rpc.ErrorInfo`, `RetryInfo` where a
retry makes sense) and our `seatd.v1.ErrorDetail`, also under the trailer key
`seatd-error-bin` so that a workstation needs nothing beyond grpcio and protobuf to read it.
Anything not in the table is INTERNAL and logged with its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import grpc
import structlog
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from seatclient.contract import DETAIL_KEY, DOMAIN
from seatclient.v1 import types_pb2

from seatd import errors
from seatd.transport import convert, refusal
from seatd.transport.handlers import Malformed
from seatd.transport.refusal import Disclosure

log = structlog.get_logger("seatd")


STATUS: dict[type[errors.SeatdError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.SeatsExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.LimitExceeded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.SessionNotFound: grpc.StatusCode.NOT_FOUND,
    errors.InvalidToken: grpc.StatusCode.UNAUTHENTICATED,
    errors.Superseded: grpc.StatusCode.ABORTED,
    errors.TakeoverDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.PolicyRefused: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.PolicyExcluded: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.LicenceRejected: grpc.StatusCode.INVALID_ARGUMENT,
    errors.LicenceRefusesGrant: grpc.StatusCode.FAILED_PRECONDITION,
    errors.SeatsNotPurchased: grpc.StatusCode.FAILED_PRECONDITION,
    errors.NotAllowed: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.DamagedRecord: grpc.StatusCode.DATA_LOSS,
}


def code_of(exc: errors.SeatdError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return grpc.StatusCode.INTERNAL


def detail_of(
    exc: errors.SeatdError, now: datetime, disclosure: Disclosure = Disclosure.DIALOG
) -> types_pb2.ErrorDetail:
    detail = types_pb2.ErrorDetail(reason=exc.reason, message=exc.message, metadata=exc.metadata)
    if isinstance(exc, errors.SeatsExhausted):
        detail.seat_cap = exc.cap
        detail.in_use = exc.in_use
        detail.sessions.extend(refusal.listed(exc.sessions, now, disclosure))
        detail.retry_after.CopyFrom(convert.duration(exc.retry_after))
        detail.queue_position = exc.queue_position
        if exc.licence is not None:
            detail.licence.CopyFrom(convert.licence(exc.licence))
    if isinstance(exc, errors.StoreFull | errors.RateLimited | errors.Draining) or (
        isinstance(exc, errors.LimitExceeded) and exc.retry_after
    ):
        detail.retry_after.CopyFrom(convert.duration(exc.retry_after))
    if isinstance(exc, errors.SessionEnded):
        detail.ended.CopyFrom(convert.ended(exc.ending))
    return detail


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(
    exc: errors.SeatdError, now: datetime, disclosure: Disclosure = Disclosure.DIALOG
) -> grpc.Status:
    code = code_of(exc)
    detail = detail_of(exc, now, disclosure)
    # The session list travels once, under DETAIL_KEY: trailers are small (see refusal.py).
    summary = types_pb2.ErrorDetail()
    summary.CopyFrom(detail)
    del summary.sessions[:]
    details = [
        _pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN, metadata=exc.metadata)),
        _pack(summary),
    ]
    if detail.HasField("retry_after"):
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=detail.retry_after)))
    status = rpc_status.to_status(
        status_pb2.Status(code=getattr(code_pb2, code.name), message=exc.message, details=details)
    )
    trailers = (*status.trailing_metadata, (DETAIL_KEY, detail.SerializeToString()))
    return _Status(status.code, status.details, trailers)


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple[Any, ...]) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing


P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")


def translated(
    method: Callable[Concatenate[S, Any, grpc.aio.ServicerContext[Any, Any], P], Awaitable[R]],
) -> Callable[Concatenate[S, Any, grpc.aio.ServicerContext[Any, Any], P], Awaitable[R]]:
    """Turn domain errors raised by a servicer method into their statuses."""

    @functools.wraps(method)
    async def wrapper(
        self: S,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        try:
            if isinstance(request, Malformed):
                raise errors.InvalidArgument("request", f"is not a valid {request.expected}")
            return await method(self, request, context, *args, **kwargs)
        except errors.SeatdError as exc:
            await abort(context, exc, clock_now(self), disclosure_of(self))
        except (grpc.aio.AbortError, grpc.aio.InternalError):
            # AbortError is our own abort on its way out. InternalError is a write that raced
            # the client's cancel and failed inside grpc (ExecuteBatchError): grpc knows
            # whether the client had closed, and then drops it quietly; it is not ours.
            raise
        except Exception:
            log.exception("rpc.internal_error", method=method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the seatd log")
        raise AssertionError("unreachable: abort raises")

    return cast(
        Callable[Concatenate[S, Any, grpc.aio.ServicerContext[Any, Any], P], Awaitable[R]],
        wrapper,
    )


def clock_now(servicer: Any) -> datetime:
    return servicer.service.clock.wall()  # type: ignore[no-any-return]


def disclosure_of(servicer: Any) -> Disclosure:
    """How much the servicer's refusals tell about other sessions (the default if unset)."""
    found = getattr(servicer, "disclosure", Disclosure.DIALOG)
    assert isinstance(found, Disclosure)
    return found


async def abort(
    context: grpc.aio.ServicerContext[Any, Any],
    exc: errors.SeatdError,
    now: datetime,
    disclosure: Disclosure = Disclosure.DIALOG,
) -> None:
    if code_of(exc) is grpc.StatusCode.INTERNAL:
        log.error("rpc.unmapped_error", error=type(exc).__name__, message=exc.message)
    status = to_status(exc, now, disclosure)
    await context.abort(status.code, status.details, status.trailing_metadata)
