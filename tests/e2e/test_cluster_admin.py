"""seatctl against any instance of a cluster: a standby's NOT_LEADER names the leader's
remote admin listener; `--remote A,B` follows it, the local socket says where to go."""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from seatclient import SeatClient

from tests.certs import make_tls
from tests.e2e.cluster import Cluster, Member, seatd_cluster  # noqa: F401  (a fixture)
from tests.e2e.conftest import BIN, wait_for
from tests.etcd import EtcdCluster

pytestmark = pytest.mark.e2e

# Bounded waits for a loaded machine.
TIMEOUT = 60.0
# A site of each test's own on the shared etcd.
_SITES = itertools.count()


@pytest.fixture
def admin_cluster(
    etcd_shared: EtcdCluster,
    seatd_cluster: Callable[..., Cluster],  # noqa: F811
    tmp_path: Path,
) -> tuple[Cluster, Path]:
    """Two instances, each with a remote admin listener over TLS on a port of its own."""
    ca, cert, key = make_tls(tmp_path)
    config = tmp_path / "seatd.toml"
    config.write_text(f'[admin]\nlisten = "127.0.0.1:0"\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    site = f"admin{next(_SITES)}"
    return seatd_cluster(etcd_shared.endpoints, "--config", str(config), site=site), ca


def standby_of(cluster: Cluster) -> tuple[Member, Member]:
    leader = cluster.leader(TIMEOUT)
    return leader, next(m for m in cluster.members if m is not leader)


def remote_ctl(
    targets: list[str], ca: Path, token: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(BIN / "seatctl"),
            "--remote",
            ",".join(targets),
            "--ca",
            str(ca),
            "--token",
            token,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_seatctl_remote_pointed_at_the_standby_lists_the_leaders_sessions(
    admin_cluster: tuple[Cluster, Path],
) -> None:
    """`seatctl --remote STANDBY,LEADER sessions` follows the standby's NOT_LEADER to the
    leader's admin listener with the same token, and lists the seat held there."""
    cluster, ca = admin_cluster
    leader, standby = standby_of(cluster)
    created = leader.ctl("token", "create", "--role", "viewer", "--name", "ops")
    assert created.returncode == 0, created.stderr
    with SeatClient(cluster.targets, timeout=TIMEOUT) as client:
        seat = client.acquire(user_code="ALICE")
        out = remote_ctl([standby.admin], ca, created.stdout.strip(), "sessions", "--json")
        assert out.returncode == 0, out.stderr
        listed = json.loads(out.stdout)
        assert [s["id"] for s in listed["sessions"]] == [seat.session_id]
        seat.release()


def test_seatctl_on_a_standbys_socket_says_where_the_leader_is(
    admin_cluster: tuple[Cluster, Path],
) -> None:
    """On a standby's local socket seatctl exits 3 naming the leader, its address and the
    `seatctl --remote` line for its admin listener."""
    cluster, _ = admin_cluster
    leader, standby = standby_of(cluster)

    def told() -> subprocess.CompletedProcess[str] | None:
        out = standby.ctl("sessions")
        # Until the standby has read the leader key it knows of no leader yet.
        return None if "no instance leads" in out.stderr else out

    out = wait_for(told, TIMEOUT, "the standby naming the leader")
    assert out.returncode == 3, out.stderr
    assert "is a standby" in out.stderr
    assert f"the cluster's leader is {leader.name} at {leader.target}" in out.stderr
    assert f"seatctl --remote {leader.admin} ..." in out.stderr
