"""A cluster instance taking over (seatd.cluster.node) against a real etcd: what its port
answers while it loads the seat table."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from seatclient import errors as client
from seatclient.v1 import seat_pb2, seat_pb2_grpc
from structlog.testing import capture_logs

from seatd import config as seatd_config
from seatd.clock import SystemClock
from seatd.cluster import node
from seatd.cluster.node import Term
from seatd.cluster.standby import StandbyServers
from seatd.config import Config
from seatd.store import EtcdStore, Fence, Snapshot, Store
from seatd.store.etcd import EtcdConfig

# Bounded waits: these run on a shared, loaded machine.
DEADLINE = 60.0


def cluster_config(etcd: EtcdConfig, tmp_path: Path) -> Config:
    return seatd_config.build(
        {
            "server": {"listen": "127.0.0.1:0", "admin_socket": str(tmp_path / "a.sock")},
            "metrics": {"listen": ""},
            "cluster": {
                "etcd": ",".join(f"http://{e}" for e in etcd.endpoints),
                "site": etcd.site,
                "name": "a",
                "advertise": "127.0.0.1:0",
                "lease_ttl": 2,
            },
        }
    )


def acquire_refusal(target: str) -> grpc.RpcError:
    """What an Acquire sent to `target` is answered (blocking: from the loading thread)."""
    with grpc.insecure_channel(target) as ch:
        try:
            seat_pb2_grpc.SeatServiceStub(ch).Acquire(
                seat_pb2.AcquireRequest(user_code="BB"), timeout=10
            )
        except grpc.RpcError as exc:
            return exc
    raise AssertionError("a seat was granted before the table was loaded")


async def test_an_elected_instance_answers_on_its_port_while_it_loads_the_table(
    etcd_site: EtcdConfig, tmp_path: Path
) -> None:
    """While the new leader opens and loads the table its port refuses NOT_LEADER naming
    itself (workstations retry there), rather than being closed."""
    config = cluster_config(etcd_site, tmp_path)
    stop = asyncio.Event()
    seen: dict[str, Any] = {}

    with capture_logs() as logs:

        def open_store(fence: Fence) -> Store:
            listen = next(e["listen"] for e in logs if e["event"] == "cluster.standby")
            seen["refused"] = acquire_refusal(listen)
            seen["listen"] = listen
            return EtcdStore(etcd_site, fence=fence)

        async def serve(
            config: Config, store: Store, snapshot: Snapshot, term: Term, _: StandbyServers
        ) -> None:
            seen["sessions"] = snapshot.sessions
            stop.set()

        await asyncio.wait_for(
            node.run(config, SystemClock(), stop, serve, open_store), DEADLINE
        )

    refused = seen["refused"]
    error = client.from_rpc_error(refused, seen["listen"])
    assert refused.code() is grpc.StatusCode.UNAVAILABLE
    assert isinstance(error, client.NotLeader) and error.leader == seen["listen"]
    assert seen["sessions"] == []


@pytest.fixture(autouse=True)
def _no_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    """No watchdog or readiness notification from a test process."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
