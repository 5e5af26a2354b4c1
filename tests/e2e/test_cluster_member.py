"""One etcd member killed, the raft leader on purpose: no disruption to the seatd cluster.

etcd's raft leader is found (Maintenance.Status) and moved (MoveLeader) so each case kills
the member it means to, not whichever happened to lead. seatd talks to etcd through one
gRPC target listing every member, which pick_first connects to in order: member 0 is the
member the leader's renewals (and its store, and its watch) use while it is up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from seatclient import SeatClient, SeatState

from seatd.cluster.config import ClusterConfig
from tests.e2e.cluster import Cluster, seatd_cluster  # noqa: F401  (a fixture)
from tests.e2e.conftest import wait_for
from tests.e2e.test_cluster import Holder
from tests.etcd import EtcdCluster

pytestmark = pytest.mark.e2e

CAP = 4
# Bounded waits for a loaded machine.
TIMEOUT = 60.0
# The leader's etcd lease (the default): how long after its last proof it may still step down.
TTL = float(ClusterConfig().lease_ttl)
# Member 0: where every seatd channel to etcd is connected (see the module docstring).
RENEWALS = 0


@pytest.mark.parametrize(
    ("raft_leader", "killed", "restarted"),
    [(2, 2, False), (2, RENEWALS, False), (RENEWALS, RENEWALS, False), (RENEWALS, RENEWALS, True)],
    ids=["raft-leader", "renewal-member", "raft-leader-and-renewal-member", "and-restarted"],
)
def test_one_etcd_member_killed_changes_no_leader_and_no_seat(
    etcd_cluster: EtcdCluster,
    seatd_cluster: Callable[..., Cluster],  # noqa: F811
    raft_leader: int,
    killed: int,
    restarted: bool,
) -> None:
    """SIGKILL one etcd member (etcd's raft leader, the member seatd's renewals use, or
    both; then start it again, or not): the seatd leader neither steps down nor changes,
    held seats stay ACTIVE throughout (JEOPARDY only if etcd's election outlasted the
    leader's margin, then ACTIVE on the same ids), and an acquire succeeds on it."""
    ride_out(etcd_cluster, seatd_cluster, raft_leader, killed, restarted)


def test_a_slow_etcd_election_keeps_the_leader_and_every_seat(
    tmp_path: Path,
    seatd_cluster: Callable[..., Cluster],  # noqa: F811
) -> None:
    """etcd with 2 s election timeouts loses its raft leader (no leader for 2 to 4 s, mostly
    past the seatd leader's margin of 2.6 s from its last renewal): the seatd leader does not
    step down and nobody else is elected; etcd elected, it grants again on the same lease and
    the held seats are ACTIVE on their ids, on the same leader. Whether granting paused on
    the way depends on how fast etcd elected (printed; `ride_out` checks both cases, and
    the pause itself is checked on the fake clock in tests/unit/test_cluster_lease.py)."""
    slow = ("--election-timeout=2000",)
    with EtcdCluster(tmp_path / "slow-etcd", extra_args=slow) as etcd:
        said = ride_out(etcd, seatd_cluster, 2, 2, False)
    print(f"granting paused: {'event=cluster.granting_paused' in said}")


def ride_out(
    etcd_cluster: EtcdCluster,
    seatd_cluster: Callable[..., Cluster],  # noqa: F811
    raft_leader: int,
    killed: int,
    restarted: bool,
) -> str:
    """Kill etcd member `killed` (after moving etcd's raft leadership to `raft_leader`),
    start it again if `restarted`, and check nothing changed for seatd: what the leader
    logged meanwhile."""
    cluster = seatd_cluster(etcd_cluster.endpoints, "--dev-seats", str(CAP))
    leader = cluster.leader(TIMEOUT)
    holders = [Holder(cluster.targets, f"H{i}") for i in range(2)]
    ids = [h.seat.session_id for h in holders]
    etcd_cluster.move_leader(raft_leader)
    before = [m.text() for m in cluster.members]
    mine = cluster.members.index(leader)
    etcd_cluster.kill(killed)
    etcd_cluster.wait_raft_leader(not_=killed)
    if restarted:
        etcd_cluster.restart(killed)
    # Absence over a window: a leader that lost its proof during etcd's election steps
    # down at the latest one lease TTL after etcd leads again (its last proof came before).
    until = time.monotonic() + TTL + 1.0
    while time.monotonic() < until:
        said = leader.text()[len(before[mine]) :]
        assert "event=cluster.stepping_down" not in said, said[-3000:]
        time.sleep(0.05)
    with SeatClient(cluster.targets, timeout=TIMEOUT) as client:
        extra = client.acquire(user_code="ONE-DOWN")
        extra.release()
    assert cluster.leader(TIMEOUT) is leader
    for member, old in zip(cluster.members, before, strict=True):
        said = member.text()[len(old) :]
        assert "event=cluster.stepping_down" not in said, said[-3000:]
        assert "event=cluster.elected" not in said, said[-3000:]
    if "event=cluster.granting_paused" not in leader.text()[len(before[mine]) :]:
        assert all(h.states == [] for h in holders), [h.states for h in holders]
    # etcd's election outlasted the margin (a loaded machine): pings refused meanwhile
    # made JEOPARDY, and the seats come back ACTIVE on the same leader and ids.
    wait_for(
        lambda: all(h.seat.state is SeatState.ACTIVE for h in holders),
        TIMEOUT,
        "held seats ACTIVE",
    )
    assert [h.seat.session_id for h in holders] == ids
    assert all(SeatState.LOST not in h.states for h in holders)
    for h in holders:
        h.close()
    return leader.text()[len(before[mine]) :]
