"""The leader key in etcd, edited by hand: the leader notices at its next renewal."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc
from seatclient import SeatClient, SeatState

from seatd.store.etcd import channel
from tests.e2e.cluster import Cluster, seatd_cluster  # noqa: F401  (a fixture)
from tests.e2e.conftest import wait_for
from tests.etcd import EtcdCluster, config_for

pytestmark = pytest.mark.e2e

# Bounded waits for a loaded machine.
TIMEOUT = 60.0


def test_a_leader_key_deleted_by_hand_makes_the_leader_step_down_and_the_standby_lead(
    etcd_shared: EtcdCluster,
    seatd_cluster: Callable[..., Cluster],  # noqa: F811
) -> None:
    """`etcdctl del /seatd/SITE/leader` while a seat is held: the leader steps down at its
    next renewal (not when its renewed lease would end: never), the standby leads, and the
    seat comes back ACTIVE on its id there."""
    site = "handdeleted"
    cluster = seatd_cluster(etcd_shared.endpoints, site=site)
    old = cluster.leader(TIMEOUT)
    etcd = config_for(etcd_shared, site)
    with SeatClient(cluster.targets, timeout=TIMEOUT) as client:
        seat = client.acquire(user_code="ALICE")
        session_id = seat.session_id
        with channel(etcd, etcd.endpoints[0]) as ch:
            rpc_pb2_grpc.KVStub(ch).DeleteRange(
                rpc_pb2.DeleteRangeRequest(key=etcd.leader_key), timeout=10
            )
        # The standby campaigns at the deletion, so the old leader finds the key either
        # gone or already the new leader's.
        stepped = re.compile(
            r"event=cluster\.stepping_down .*its leader key (is gone|was replaced)"
        )
        wait_for(lambda: stepped.search(old.text()), TIMEOUT, "the old leader stepping down")
        new = cluster.leader(TIMEOUT)
        assert new is not old
        wait_for(
            lambda: seat.state is SeatState.ACTIVE and seat.session_id == session_id,
            TIMEOUT,
            "the seat ACTIVE again on its id",
        )
        seat.release()
