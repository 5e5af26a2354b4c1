"""The daemon's two gRPC servers: workstations on TCP, administrators on a unix socket.

They are separate servers so that the admin service is never reachable over the network.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import structlog
from grpc_health.v1 import health_pb2
from seatclient.v1 import admin_pb2, seat_pb2

from seatd import fds, filemodes
from seatd.actions import AdminActions
from seatd.auth import AdminConfig
from seatd.cloudsync import CloudSync
from seatd.cluster.handover import Handlers, Switch
from seatd.errors import StateError
from seatd.service import SeatService
from seatd.transport.admin import AdminServicer
from seatd.transport.handlers import add_service
from seatd.transport.health import Health, serve_health_and_reflection
from seatd.transport.peers import PeerCallLimit
from seatd.transport.refusal import Disclosure
from seatd.transport.seat import SeatServicer

if TYPE_CHECKING:
    from seatd.cluster.standby import StandbyServers

log = structlog.get_logger("seatd")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    listen: str = "127.0.0.1:7117"
    admin_socket: Path = Path("/run/seatd/admin.sock")
    admin_socket_mode: int = 0o660
    # gRPC's defaults (1,000 / 3,000) reject a reattach storm with a misleading INTERNAL.
    max_pending_requests: int = 50_000
    # TLS for workstations (PEM files); with client_ca, workstations must show a certificate.
    tls_cert: str = ""
    tls_key: str = ""
    client_ca: str = ""
    # What a refusal at capacity tells any caller about the sessions holding the seats:
    # count, dialog (user code, name, computer, start; no IP) or full (with IP).
    refusal_disclosure: Disclosure = Disclosure.DIALOG
    # Connections to the workstation port at once (lowered at start to what the descriptor
    # limit allows, keeping a reserve for the admin socket).
    max_connections: int = 20_000
    # Calls one address may hold open (streams, waits); loopback is not capped.
    max_calls_per_peer: int = 1_000
    # Seconds a new connection may take to start speaking HTTP/2 (and TLS) before it is closed.
    handshake_timeout: float = 10.0
    # Seconds a connection may carry no call at all before it is closed (the client library
    # reconnects by itself when it next needs to).
    idle_timeout: float = 600.0


# The client library sends a transport ping every 10 s. A ping sooner than 5 s after the
# last one, with no data between, is a strike; after two, the peer is sent GOAWAY
# (too_many_pings), so HTTP/2 pings cannot be used to keep the daemon busy.
MIN_PING_INTERVAL_MS = 5_000
MAX_PING_STRIKES = 2


def options(config: ServerConfig) -> list[tuple[str, int]]:
    return [
        # A second daemon on the same port must fail, not split the seats between them.
        ("grpc.so_reuseport", 0),
        ("grpc.server.max_pending_requests", config.max_pending_requests),
        ("grpc.server.max_pending_requests_hard_limit", config.max_pending_requests * 2),
        # LAN keepalive: find half-open connections.
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", MIN_PING_INTERVAL_MS),
        ("grpc.http2.max_ping_strikes", MAX_PING_STRIKES),
    ]


def network_options(config: ServerConfig) -> list[tuple[str, int]]:
    """For listeners any LAN host can reach: connections are bounded and must do something."""
    return [
        *options(config),
        # Never into the descriptors kept for the admin socket, the store and the rest.
        ("grpc.max_allowed_incoming_connections", fds.connection_cap(config.max_connections)),
        ("grpc.server_handshake_timeout_ms", int(config.handshake_timeout * 1000)),
        ("grpc.max_connection_idle_ms", int(config.idle_timeout * 1000)),
    ]


SEAT_SERVICE = seat_pb2.DESCRIPTOR.services_by_name["SeatService"].full_name
ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name


def _claim_socket(path: Path) -> None:
    """Refuse a socket another daemon answers on; remove one left by a dead daemon."""
    filemodes.group_dir(path.parent)
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()
    else:
        raise StateError(
            f"another daemon is answering on the admin socket {path}; stop it, or change "
            "server.admin_socket (--admin-socket)"
        )
    finally:
        probe.close()


@dataclass
class Servers:
    seat: grpc.aio.Server
    admin: grpc.aio.Server
    port: int
    # The seat server's health first, then each admin server's.
    health: list[Health]
    service: SeatService
    # What the admin servers answer with; the web console answers with the same.
    actions: AdminActions
    remote: grpc.aio.Server | None = None
    remote_port: int = 0
    # A cluster's new leader: the standby's running servers, each switch given its handlers
    # at `start` (none: these servers are this daemon's own, started by `start`).
    handover: list[tuple[Switch, list[grpc.GenericRpcHandler]]] = field(default_factory=list)

    def all(self) -> list[grpc.aio.Server]:
        return [self.seat, self.admin, *([self.remote] if self.remote else [])]

    async def start(self) -> None:
        if self.handover:
            for switch, handlers in self.handover:
                switch.hand_over(handlers)
        else:
            for server in self.all():
                await server.start()
        for checker in self.health:
            await checker.set(health_pb2.HealthCheckResponse.SERVING)

    async def drain(self) -> None:
        """Stop granting: health checks say NOT_SERVING for the seat server before its
        workstations are told to reattach later. Administration keeps serving."""
        await self.health[0].set(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.service.drain()

    async def stop(self, grace: float) -> None:
        for checker in self.health:
            await checker.checker.enter_graceful_shutdown()
        for server in self.all():
            await server.stop(grace)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise StateError(f"cannot read {what} {path}: {exc.strerror}") from exc


def _tls(cert: str, key: str, client_ca: str, *, require_client: bool) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(_read(key, "TLS key"), _read(cert, "TLS certificate"))],
        root_certificates=_read(client_ca, "client CA") if client_ca else None,
        require_client_auth=require_client,
    )


def _bind(
    server: grpc.aio.Server, address: str, creds: grpc.ServerCredentials | None, setting: str
) -> int:
    try:
        port = (
            server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
        )
    except RuntimeError:
        port = 0
    if port == 0:
        raise StateError(
            f"cannot listen on {address}: the address is in use or not available "
            f"(is another seatd running?); change {setting}"
        )
    return port


def is_loopback(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]")
    return host in ("localhost", "") or host.startswith("127.") or host == "::1"


def build(
    config: ServerConfig,
    service: SeatService,
    cloud: CloudSync | None = None,
    admin_config: AdminConfig | None = None,
    standby: StandbyServers | None = None,
) -> Servers:
    """The daemon's servers, bound; or, given a cluster `standby`'s servers, those servers
    with the leader's handlers ready to take over their calls at `start`."""
    admin_config = admin_config or AdminConfig()
    if standby is not None:
        return _take_over(standby, config, service, cloud, admin_config)
    seat = grpc.aio.server(options=network_options(config))
    # Every handler on the workstation port, health and reflection included, counted per peer.
    capped = PeerCallLimit(config.max_calls_per_peer, service.clock).capped(seat)
    seat_service = seat_pb2.DESCRIPTOR.services_by_name["SeatService"]
    add_service(
        capped, seat_service, SeatServicer(service, config.refusal_disclosure), service.clock
    )
    checkers = [serve_health_and_reflection(capped, [SEAT_SERVICE])]
    seat_creds = None
    if config.tls_cert:
        seat_creds = _tls(
            config.tls_cert, config.tls_key, config.client_ca, require_client=bool(config.client_ca)
        )
    elif not is_loopback(config.listen):
        log.warning(
            "server.plaintext",
            listen=config.listen,
            note="workstations connect without TLS: for development only; "
            "set server.tls_cert and server.tls_key",
        )
    port = _bind(seat, config.listen, seat_creds, "server.listen (--listen)")

    actions = AdminActions(service, cloud)
    admin_service = admin_pb2.DESCRIPTOR.services_by_name["AdminService"]

    def admin_server(opts: list[tuple[str, int]]) -> grpc.aio.Server:
        server = grpc.aio.server(options=opts)
        add_service(
            server,
            admin_service,
            AdminServicer(actions, admin_config.identities),
            service.clock,
        )
        checkers.append(serve_health_and_reflection(server, [ADMIN_SERVICE]))
        return server

    # Its own server, without the workstation port's connection cap: whatever a LAN host
    # does to that port, the local admin socket still answers.
    admin = admin_server(options(config))
    _claim_socket(config.admin_socket)
    try:
        admin.add_insecure_port(f"unix:{config.admin_socket}")
    except RuntimeError as exc:
        raise StateError(
            f"cannot create the admin socket {config.admin_socket}: {exc}; change "
            "server.admin_socket (--admin-socket)"
        ) from exc
    servers = Servers(seat, admin, port, checkers, service, actions)
    if admin_config.listen:
        # grpc either requires and verifies client certificates or does not ask for them:
        # with a client CA the remote listener is mTLS; without one, TLS plus tokens.
        creds = _tls(
            admin_config.tls_cert,
            admin_config.tls_key,
            admin_config.client_ca,
            require_client=bool(admin_config.client_ca),
        )
        servers.remote = admin_server(network_options(config))
        servers.remote_port = _bind(servers.remote, admin_config.listen, creds, "admin.listen")
    return servers


def _take_over(
    standby: StandbyServers,
    config: ServerConfig,
    service: SeatService,
    cloud: CloudSync | None,
    admin_config: AdminConfig,
) -> Servers:
    """The leader's handlers for the standby's servers (seat, admin, remote admin: its
    switches' order). Health, reflection, the per-peer cap and the ports are the standby's."""
    seat = Handlers()
    seat_service = seat_pb2.DESCRIPTOR.services_by_name["SeatService"]
    add_service(seat, seat_service, SeatServicer(service, config.refusal_disclosure), service.clock)
    actions = AdminActions(service, cloud)
    admin = Handlers()
    add_service(
        admin,
        admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
        AdminServicer(actions, admin_config.identities),
        service.clock,
    )
    handlers = [seat.generic, *([admin.generic] * (len(standby.switches) - 1))]
    remote = standby.servers[2] if len(standby.servers) > 2 else None
    return Servers(
        standby.servers[0],
        standby.servers[1],
        standby.port,
        standby.health,
        service,
        actions,
        remote,
        standby.admin_port,
        list(zip(standby.switches, handlers, strict=True)),
    )


def secure_socket(config: ServerConfig) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.chmod(config.admin_socket, config.admin_socket_mode)
