"""A refusal at 1,000 seats, end to end: the library decodes it, `seat hold` prints a table."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Callable

import grpc
import pytest
from seatclient import SeatClient, SeatsExhausted
from seatclient.v1 import seat_pb2, seat_pb2_grpc

from tests.e2e.conftest import BIN, Daemon

pytestmark = pytest.mark.e2e

SEATS = 1000


async def fill(target: str, seats: int) -> None:
    """Take every seat with plain Acquire calls (no keepalive: the long TTL holds them)."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = seat_pb2_grpc.SeatServiceStub(channel)
        gate = asyncio.Semaphore(50)

        async def one(i: int) -> None:
            async with gate:
                await stub.Acquire(
                    seat_pb2.AcquireRequest(
                        user_code=f"U{i:04d}",
                        user_name=f"User {i}",
                        hostname=f"PC-{i:04d}",
                        idempotency_key=f"k{i}",
                    ),
                    timeout=30,
                )

        await asyncio.gather(*(one(i) for i in range(seats)))


@pytest.fixture
def full_house(make_daemon: Callable[..., Daemon]) -> Daemon:
    daemon = make_daemon(
        "--dev-seats", str(SEATS), "--lease-ttl", "300", "--keepalive-interval", "10"
    )
    asyncio.run(fill(daemon.target, SEATS))
    return daemon


def test_library_decodes_a_refusal_at_1000_seats(full_house: Daemon) -> None:
    """At 1,000 seats the library raises SeatsExhausted with the total and the oldest sessions,
    not a generic "Stream removed" error."""
    with SeatClient(full_house.target) as client, pytest.raises(SeatsExhausted) as refused:
        client.acquire(user_code="LATE")
    full = refused.value
    assert (full.cap, full.in_use) == (SEATS, SEATS)
    ids = [s.id for s in full.sessions]
    assert 0 < len(ids) <= 50
    assert ids == list(range(1, len(ids) + 1))
    assert full.unlisted == SEATS - len(full.sessions)
    assert all(s.ip == "" for s in full.sessions)


def test_seat_hold_prints_the_oldest_sessions_and_how_many_more(full_house: Daemon) -> None:
    """`seat hold` at 1,000 seats exits 2 with a table (no IP column) and "and N more"."""
    out = subprocess.run(
        [str(BIN / "seat"), "hold", "--target", full_house.target, "--user", "LATE"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2, out.stderr
    assert re.search(
        r"^ID\s+USER\s+NAME\s+COMPUTER\s+STARTED \(UTC\)\s+DURATION$", out.stdout, re.M
    )
    listed = re.findall(r"^\d+\s+U\d{4}\s", out.stdout, re.M)
    assert listed
    assert f"and {SEATS - len(listed)} more" in out.stdout
