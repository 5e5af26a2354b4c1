"""A daemon whose store fills: grants stop with advice, the admin is warned, SIGTERM exits
cleanly, and after a restart seats are still released."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from seatclient.v1 import seat_pb2, seat_pb2_grpc

from tests.e2e.conftest import Daemon

pytestmark = pytest.mark.e2e


def fill(target: str) -> list[seat_pb2.AcquireResponse]:
    """Acquire seats until the daemon answers UNAVAILABLE; return the grants."""
    granted: list[seat_pb2.AcquireResponse] = []
    with grpc.insecure_channel(target) as channel:
        stub = seat_pb2_grpc.SeatServiceStub(channel)
        for batch in range(200):
            calls = [
                stub.Acquire.future(
                    seat_pb2.AcquireRequest(
                        user_code=f"U{batch}-{i}",
                        user_name="filler",
                        hostname=f"PC-{batch}-{i}",
                        idempotency_key=f"k-{batch}-{i}",
                    ),
                    timeout=10,
                )
                for i in range(20)
            ]
            for call in calls:
                if call.code() is grpc.StatusCode.OK:
                    granted.append(call.result())
                    continue
                assert call.code() is grpc.StatusCode.UNAVAILABLE, call.details()
                assert "store.map_size" in str(call.details())
                return granted
    raise AssertionError("the store never filled")


def test_a_full_store_warns_stops_cleanly_and_releases_after_restart(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """At a full store, grants are refused with advice, `seatctl status` warns, SIGTERM exits
    0 without a traceback, and the restarted daemon releases a seat."""
    config = tmp_path / "tiny.toml"
    config.write_text("[store]\nmap_size = 1048576\n")
    # Leases long enough that no seat expires (and frees room) during the test.
    daemon = make_daemon(
        "--config",
        str(config),
        "--dev-seats",
        "100000",
        "--lease-ttl",
        "600",
        "--keepalive-interval",
        "10",
    )
    granted = fill(daemon.target)
    assert granted
    status = daemon.ctl("status")
    assert status.returncode == 0, status.stderr
    assert "FULL" in status.stdout and "store.map_size" in status.stdout
    store = json.loads(daemon.ctl("status", "--json").stdout)["store"]
    assert store["grants_refused"] and store["used_ratio"] > 0.3
    assert daemon.stop() == 0
    log = daemon.log_path.read_text()
    assert "event=store.full" in log
    assert "Traceback" not in log
    daemon.start()
    with grpc.insecure_channel(daemon.target) as channel:
        stub = seat_pb2_grpc.SeatServiceStub(channel)
        first = granted[0]
        released = stub.Release(
            seat_pb2.ReleaseRequest(session_id=first.session_id, lease_token=first.lease_token),
            timeout=10,
        )
    assert released.released
    assert daemon.stop() == 0
