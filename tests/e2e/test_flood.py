"""What a LAN host does to the workstation port never locks out the administrator."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from seatclient import SeatClient

from tests.e2e.cluster import Cluster, seatd_cluster  # noqa: F401  (a fixture)
from tests.e2e.conftest import Daemon
from tests.etcd import EtcdCluster

pytestmark = pytest.mark.e2e

# A descriptor limit small enough to exhaust from a test, large enough to start the daemon.
NOFILE = 256


def test_admin_socket_answers_while_idle_connections_flood_the_port(
    make_daemon: Callable[..., Daemon],
) -> None:
    """With the daemon's descriptor limit at 256, 400 idle connections to the workstation port
    leave seatctl working; once the flood goes, workstations get seats again."""
    daemon = make_daemon(
        "--dev-seats", "2", runner=["prlimit", f"--nofile={NOFILE}:{NOFILE}", "--"]
    )
    flood: list[socket.socket] = []
    try:
        for _ in range(400):
            flood.append(socket.create_connection(("127.0.0.1", daemon.port), timeout=5))
        assert daemon.sessions()["in_use"] == 0
    finally:
        for s in flood:
            s.close()
    with SeatClient(daemon.target) as client:
        seat = client.acquire(user_code="AA")
        assert seat.session_id == 1
        seat.release()
    assert "server.connections_capped" in daemon.log_path.read_text()


def test_a_cluster_leader_under_a_connection_flood_keeps_its_descriptor_reserve(
    etcd_shared: EtcdCluster,
    seatd_cluster: Callable[..., Cluster],  # noqa: F811
) -> None:
    """The same flood on a cluster's leader, whose workstation port was its standby's (built
    before it led): the port still stops short of the descriptor reserve, so the admin socket
    answers, the lease renews through etcd, and a seat is granted once the flood goes."""
    cluster = seatd_cluster(
        etcd_shared.endpoints,
        size=1,
        site="flood",
        runner=("prlimit", f"--nofile={NOFILE}:{NOFILE}", "--"),
    )
    leader = cluster.leader(60)
    flood: list[socket.socket] = []
    try:
        for _ in range(400):
            flood.append(socket.create_connection(("127.0.0.1", leader.port), timeout=5))
        out = leader.ctl("sessions", "--json")
        assert out.returncode == 0, out.stderr
    finally:
        for s in flood:
            s.close()
    with SeatClient(cluster.targets, timeout=60) as client:
        seat = client.acquire(user_code="AA")
        seat.release()
    assert "server.connections_capped" in leader.text()
    assert "cluster.stepping_down" not in leader.text()
