"""The cloud endpoint's gRPC services: the daemons' licence sync and the payment callback,
with standard health checking (each service by name) and server reflection, as the daemon."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

import grpc
import structlog

from seatd.cloud.ledger import Ledger, LedgerError
from seatd.cloud.pricing import PricingError
from seatd.cloud.v1 import cloud_pb2, cloud_pb2_grpc
from seatd.transport.convert import timestamp
from seatd.transport.health import Health, serve_health_and_reflection

log = structlog.get_logger("seatd.cloud")

Context = grpc.aio.ServicerContext[Any, Any]

STATUS = {
    "BAD_INSTALLATION": grpc.StatusCode.INVALID_ARGUMENT,
    "WRONG_SECRET": grpc.StatusCode.UNAUTHENTICATED,
    "REGISTRATION_REQUIRED": grpc.StatusCode.UNAUTHENTICATED,
    "REGISTRATION_CODE_WRONG": grpc.StatusCode.UNAUTHENTICATED,
    "REGISTRATION_CODE_USED": grpc.StatusCode.UNAUTHENTICATED,
    "REGISTRATION_CODE_EXPIRED": grpc.StatusCode.UNAUTHENTICATED,
    "NO_SUBSCRIPTION": grpc.StatusCode.FAILED_PRECONDITION,
    "ORDER_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "NOT_APPROVED": grpc.StatusCode.FAILED_PRECONDITION,
    "ORDER_CANCELLED": grpc.StatusCode.FAILED_PRECONDITION,
}


def order_pb(order: dict[str, Any]) -> cloud_pb2.Order:
    fields = {f.name for f in cloud_pb2.Order.DESCRIPTOR.fields}
    return cloud_pb2.Order(**{k: v for k, v in order.items() if k in fields})


async def _refuse(context: Context, exc: Exception) -> None:
    if isinstance(exc, LedgerError):
        code = STATUS.get(exc.code, grpc.StatusCode.FAILED_PRECONDITION)
    else:
        code = grpc.StatusCode.INVALID_ARGUMENT
    await context.abort(code, str(exc))


class SyncServicer(cloud_pb2_grpc.LicenceSyncServiceServicer):
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def Sync(
        self, request: cloud_pb2.SyncRequest, context: Context
    ) -> cloud_pb2.SyncResponse:
        base_id = request.installation.base_id
        try:
            self.ledger.authenticate(
                base_id, request.installation.secret, request.installation.registration_code
            )
        except LedgerError as exc:
            log.warning("cloud.sync_refused", base_id=base_id, reason=exc.code)
            await _refuse(context, exc)
        answer = self.ledger.sync_answer(base_id)
        now, signature = self.ledger.signed_time(base_id)
        assert self.ledger.key is not None
        log.info(
            "cloud.sync",
            base_id=base_id,
            serial_in_force=request.serial_in_force,
            peak_sessions=request.peak_sessions,
            refusals=request.refusals,
            daemon_version=request.daemon_version,
            has_licence=bool(answer.licence),
            has_next=bool(answer.next_licence),
            transferred_to=answer.transferred_to,
        )
        response = cloud_pb2.SyncResponse(
            licence_text=answer.licence,
            server_time=cloud_pb2.SignedTime(
                time=timestamp(now), base_id=base_id, kid=self.ledger.key.kid, signature=signature
            ),
            latest_client_version=self.ledger.latest_client_version,
            next_licence_text=answer.next_licence,
        )
        if answer.transferred_at is not None:
            response.transferred.CopyFrom(
                cloud_pb2.Transfer(
                    to_base_id=answer.transferred_to, at=timestamp(answer.transferred_at)
                )
            )
        return response

    async def OrderSeats(
        self, request: cloud_pb2.OrderSeatsRequest, context: Context
    ) -> cloud_pb2.OrderSeatsResponse:
        base_id = request.installation.base_id
        try:
            self.ledger.authenticate(base_id, request.installation.secret)
            if request.seats < 1:
                raise PricingError("seats must be at least 1")
            if request.quote_only:
                order = self.ledger.quote_extra_seats(base_id, request.seats)
            else:
                order = self.ledger.order_extra_seats(base_id, request.seats)
        except (LedgerError, PricingError) as exc:
            await _refuse(context, exc)
        log.info("cloud.order", base_id=base_id, order_id=order["order_id"], seats=request.seats)
        return cloud_pb2.OrderSeatsResponse(order=order_pb(order))


class PaymentServicer(cloud_pb2_grpc.PaymentServiceServicer):
    def __init__(self, ledger: Ledger, token: str) -> None:
        self.ledger = ledger
        self.token = token

    async def ReportPayment(
        self, request: cloud_pb2.ReportPaymentRequest, context: Context
    ) -> cloud_pb2.ReportPaymentResponse:
        presented = dict(context.invocation_metadata() or ()).get("authorization", "")
        if not self.token or not hmac.compare_digest(str(presented), f"Bearer {self.token}"):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "payment system token required")
        try:
            order = self.ledger.mark_paid(request.order_id, reference=request.payment_reference)
        except LedgerError as exc:
            await _refuse(context, exc)
        log.info("cloud.paid", order_id=order["order_id"], serial=order["licence_serial"])
        return cloud_pb2.ReportPaymentResponse(
            order=order_pb(order), licence_serial=order["licence_serial"]
        )


SERVICES = tuple(s.full_name for s in cloud_pb2.DESCRIPTOR.services_by_name.values())


def build(
    ledger: Ledger, listen: str, *, payment_token: str, tls_cert: Path | None, tls_key: Path | None
) -> tuple[grpc.aio.Server, int, Health]:
    """The server (not started), its port, and its health checks (set SERVING once started,
    NOT_SERVING before a stop)."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    cloud_pb2_grpc.add_LicenceSyncServiceServicer_to_server(SyncServicer(ledger), server)
    cloud_pb2_grpc.add_PaymentServiceServicer_to_server(
        PaymentServicer(ledger, payment_token), server
    )
    checks = serve_health_and_reflection(server, list(SERVICES))
    try:
        if tls_cert and tls_key:
            creds = grpc.ssl_server_credentials([(tls_key.read_bytes(), tls_cert.read_bytes())])
            port = server.add_secure_port(listen, creds)
        else:
            port = server.add_insecure_port(listen)
    except RuntimeError:
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {listen}: the address is in use or not available")
    return server, port, checks
