"""What a standby serves: every call refused with NOT_LEADER and where the leader is.

A standby holds no seat table (the leader alone arbitrates), so it answers each seat and
admin call with UNAVAILABLE, reason NOT_LEADER and the leader's advertised address in the
error's metadata (`contract.Meta.LEADER`); the client library goes there directly and
`seatctl` says where to go. Health checks say NOT_SERVING, so a load balancer or probe
sends nobody here. It binds the same listeners the leader would and, once this instance is
elected and has loaded the table, hands them over to the leader's handlers
(`seatd.cluster.handover`): the port never closes, and the calls held meanwhile are answered
by the leader.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2
from seatclient.v1 import admin_pb2, seat_pb2

from seatd.auth import AdminConfig
from seatd.clock import Clock
from seatd.cluster.handover import Handlers, Holding, Switch
from seatd.errors import NotLeader
from seatd.server import (
    ADMIN_SERVICE,
    SEAT_SERVICE,
    ServerConfig,
    _bind,
    _claim_socket,
    _tls,
    network_options,
    options,
    secure_socket,
)
from seatd.transport.handlers import HandlerSink, add_service
from seatd.transport.health import Health, serve_health_and_reflection
from seatd.transport.peers import PeerCallLimit
from seatd.transport.status import abort

Refusal = Callable[[], NotLeader]
# Seconds the held calls are given to be answered when the listeners close without a leader
# to hand them to (they take microseconds; the bound is for a long call such as a health
# Watch, which is cut).
RELEASE_GRACE = 0.2


class _Refuser:
    """A servicer whose every method is the same refusal."""

    def __init__(self, refusal: Refusal, clock: Clock) -> None:
        self._refusal = refusal
        self._clock = clock

    def __getattr__(self, name: str) -> Callable[[Any, Any], Awaitable[None]]:
        async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            await abort(context, self._refusal(), self._clock.wall())

        return refuse


@dataclass
class StandbyServers:
    servers: list[grpc.aio.Server]
    health: list[Health]
    port: int
    # One per server, in the same order: who answers its calls (handed over to the leader).
    switches: list[Switch]
    # The remote admin listener's port (0: none).
    admin_port: int = 0

    async def start(self) -> None:
        # Before the port opens: grpc's health servicer starts out SERVING, and a probe
        # answered that in between would take this standby for the leader.
        for checker in self.health:
            await checker.set(health_pb2.HealthCheckResponse.NOT_SERVING)
        for server in self.servers:
            await server.start()

    async def stop(self) -> None:
        """Answer the held calls, then close the listeners (a no-op once they are closed)."""
        for switch in self.switches:
            switch.release()
        for server in self.servers:
            await server.stop(RELEASE_GRACE)


def _switched(
    server: HandlerSink,
    service: ServiceDescriptor,
    refuser: _Refuser,
    clock: Clock,
    holding: Holding,
) -> Switch:
    refusals = Handlers()
    add_service(refusals, service, refuser, clock)
    switch = Switch(refusals.generic, holding)
    server.add_generic_rpc_handlers((switch,))
    return switch


def build(
    config: ServerConfig,
    admin_config: AdminConfig,
    refusal: Refusal,
    clock: Clock,
    holding: Holding = lambda: False,
) -> StandbyServers:
    refuser = _Refuser(refusal, clock)
    seat = grpc.aio.server(options=network_options(config))
    # The leader's per-peer cap from the start: the server is the leader's once handed over.
    capped = PeerCallLimit(config.max_calls_per_peer, clock).capped(seat)
    seat_service = seat_pb2.DESCRIPTOR.services_by_name["SeatService"]
    switches = [_switched(capped, seat_service, refuser, clock, holding)]
    checkers = [serve_health_and_reflection(capped, [SEAT_SERVICE])]
    creds = None
    if config.tls_cert:
        creds = _tls(
            config.tls_cert, config.tls_key, config.client_ca, require_client=bool(config.client_ca)
        )
    port = _bind(seat, config.listen, creds, "server.listen (--listen)")
    admin = grpc.aio.server(options=options(config))
    admin_service = admin_pb2.DESCRIPTOR.services_by_name["AdminService"]
    switches.append(_switched(admin, admin_service, refuser, clock, holding))
    checkers.append(serve_health_and_reflection(admin, [ADMIN_SERVICE]))
    _claim_socket(config.admin_socket)
    admin.add_insecure_port(f"unix:{config.admin_socket}")
    servers = [seat, admin]
    if admin_config.listen:
        remote = grpc.aio.server(options=network_options(config))
        switches.append(_switched(remote, admin_service, refuser, clock, holding))
        checkers.append(serve_health_and_reflection(remote, [ADMIN_SERVICE]))
        remote_creds = _tls(
            admin_config.tls_cert,
            admin_config.tls_key,
            admin_config.client_ca,
            require_client=bool(admin_config.client_ca),
        )
        admin_port = _bind(remote, admin_config.listen, remote_creds, "admin.listen")
        servers.append(remote)
        return StandbyServers(servers, checkers, port, switches, admin_port)
    return StandbyServers(servers, checkers, port, switches)


async def serve(
    config: ServerConfig,
    admin_config: AdminConfig,
    refusal: Refusal,
    clock: Clock,
    holding: Holding = lambda: False,
) -> StandbyServers:
    """Build and start the standby's listeners."""
    standby = build(config, admin_config, refusal, clock, holding)
    await standby.start()
    secure_socket(config)
    return standby
