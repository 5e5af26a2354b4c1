"""Standard gRPC health checking, by service name, and server reflection for one server.

Both the daemon's servers and the vendor's cloud endpoint serve them the same way: the empty
name (the whole server) and each service the server carries, as standard health clients ask
by service name (grpcurl, grpc-health-probe, load balancers).
"""

from __future__ import annotations

from dataclasses import dataclass

from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from seatd.transport.handlers import Registry


@dataclass(frozen=True, slots=True)
class Health:
    """One server's health servicer and the names it answers for: "" (the whole server)
    and each service the server carries."""

    checker: health.aio.HealthServicer
    names: tuple[str, ...]

    async def set(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in ("", *self.names):
            await self.checker.set(name, status)


def serve_health_and_reflection(server: Registry, names: list[str]) -> Health:
    """Add health checking and reflection for `names` to `server` (before it starts)."""
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    listed = [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
    # The asyncio servicer by name: `enable_server_reflection` picks it only for a
    # grpc.aio.Server itself, and `server` may be the per-peer capped registry in front of one.
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        reflection.aio.ReflectionServicer([*listed, reflection.SERVICE_NAME]), server
    )
    return Health(checker, tuple(names))
