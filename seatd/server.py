"""The daemon's two gRPC servers: workstations on TCP, administrators on a unix socket.

They are separate servers so that the admin service is never reachable over the network.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from seatclient.v1 import admin_pb2, seat_pb2

from seatd.cloudsync import CloudSync
from seatd.errors import StateError
from seatd.service import SeatService
from seatd.transport.admin import AdminServicer
from seatd.transport.handlers import add_service
from seatd.transport.seat import SeatServicer


@dataclass(frozen=True, slots=True)
class ServerConfig:
    listen: str = "127.0.0.1:7117"
    admin_socket: Path = Path("/run/seatd/admin.sock")
    admin_socket_mode: int = 0o660
    # gRPC's defaults (1,000 / 3,000) reject a reattach storm with a misleading INTERNAL.
    max_pending_requests: int = 50_000


def options(config: ServerConfig) -> list[tuple[str, int]]:
    return [
        # A second daemon on the same port must fail, not split the seats between them.
        ("grpc.so_reuseport", 0),
        ("grpc.server.max_pending_requests", config.max_pending_requests),
        ("grpc.server.max_pending_requests_hard_limit", config.max_pending_requests * 2),
        # LAN keepalive: find half-open connections, and never punish clients' pings.
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_ping_strikes", 0),
    ]


def _serve_health_and_reflection(
    server: grpc.aio.Server, names: list[str]
) -> health.aio.HealthServicer:
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    return checker


def _claim_socket(path: Path) -> None:
    """Refuse a socket another daemon answers on; remove one left by a dead daemon."""
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()
    else:
        raise StateError(f"another daemon is answering on the admin socket {path}")
    finally:
        probe.close()


@dataclass
class Servers:
    seat: grpc.aio.Server
    admin: grpc.aio.Server
    port: int
    health: list[health.aio.HealthServicer]

    async def start(self) -> None:
        await self.seat.start()
        await self.admin.start()
        for checker in self.health:
            await checker.set("", health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float) -> None:
        for checker in self.health:
            await checker.enter_graceful_shutdown()
        await self.seat.stop(grace)
        await self.admin.stop(grace)


def build(config: ServerConfig, service: SeatService, cloud: CloudSync | None = None) -> Servers:
    opts = options(config)
    seat = grpc.aio.server(options=opts)
    seat_service = seat_pb2.DESCRIPTOR.services_by_name["SeatService"]
    add_service(seat, seat_service, SeatServicer(service))
    seat_health = _serve_health_and_reflection(seat, [seat_service.full_name])
    try:
        port = seat.add_insecure_port(config.listen)
    except RuntimeError:
        port = 0
    if port == 0:
        raise StateError(
            f"cannot listen on {config.listen}: the address is in use or not available "
            "(is another seatd running?)"
        )

    admin = grpc.aio.server(options=opts)
    admin_service = admin_pb2.DESCRIPTOR.services_by_name["AdminService"]
    add_service(admin, admin_service, AdminServicer(service, cloud))
    admin_health = _serve_health_and_reflection(admin, [admin_service.full_name])
    _claim_socket(config.admin_socket)
    try:
        admin.add_insecure_port(f"unix:{config.admin_socket}")
    except RuntimeError as exc:
        raise StateError(f"cannot create the admin socket {config.admin_socket}: {exc}") from exc
    return Servers(seat, admin, port, [seat_health, admin_health])


def secure_socket(config: ServerConfig) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.chmod(config.admin_socket, config.admin_socket_mode)
