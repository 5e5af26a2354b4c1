"""Standard gRPC health checking, asked the way a load balancer or grpc_health_probe asks."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.conftest import Running

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def status(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return answer.status


@pytest.mark.parametrize("name", ["", "seatd.v1.SeatService"])
async def test_seat_server_answers_health_by_service_name(running: Running, name: str) -> None:
    """The seat server is SERVING for the whole server and for seatd.v1.SeatService by name."""
    assert await status(running.channel, name) == SERVING


@pytest.mark.parametrize("name", ["", "seatd.v1.AdminService"])
async def test_admin_server_answers_health_by_service_name(
    running: Running, tmp_path: Path, name: str
) -> None:
    """The admin socket is SERVING for the whole server and for seatd.v1.AdminService by name."""
    async with grpc.aio.insecure_channel(f"unix:{tmp_path / 'admin.sock'}") as channel:
        assert await status(channel, name) == SERVING


async def test_draining_seat_server_is_not_serving_while_admin_still_serves(
    running: Running, tmp_path: Path
) -> None:
    """While draining (SIGTERM), the seat service says NOT_SERVING; administration serves on."""
    await running.servers.drain()
    assert await status(running.channel, "seatd.v1.SeatService") == NOT_SERVING
    assert await status(running.channel, "") == NOT_SERVING
    async with grpc.aio.insecure_channel(f"unix:{tmp_path / 'admin.sock'}") as channel:
        assert await status(channel, "seatd.v1.AdminService") == SERVING
