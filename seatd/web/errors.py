"""Domain errors as HTTP answers: the gRPC status table's code, turned into an HTTP status by
the standard google.rpc mapping, with the same `ErrorDetail` gRPC sends (as JSON)."""

from __future__ import annotations

from datetime import datetime

import grpc
import structlog
from aiohttp import web

from seatd.errors import SeatdError
from seatd.transport.status import code_of, detail_of
from seatd.web.protojson import to_json

log = structlog.get_logger("seatd")

# google/rpc/code.proto's HTTP mapping (the one grpc-gateway and Google's APIs use).
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


def http_status(exc: SeatdError) -> int:
    """The HTTP status the API answers `exc` with (a page shows the same)."""
    return HTTP_STATUS[code_of(exc)]


def error_body(exc: SeatdError, now: datetime) -> tuple[int, dict[str, object]]:
    code = code_of(exc)
    if code is grpc.StatusCode.INTERNAL:
        log.error("web.unmapped_error", error=type(exc).__name__, message=exc.message)
    detail = to_json(detail_of(exc, now))
    return HTTP_STATUS[code], {"error": {"code": code.name, **detail}}


def error_response(request: web.Request, exc: SeatdError, now: datetime) -> web.Response:
    status, body = error_body(exc, now)
    headers = {}
    if status == 401 and request.path.startswith("/api/"):
        headers["WWW-Authenticate"] = 'Bearer realm="seatd"'
    retry = exc.__dict__.get("retry_after")
    if isinstance(retry, int | float) and retry > 0:
        headers["Retry-After"] = str(max(1, round(retry)))
    return web.json_response(body, status=status, headers=headers)
