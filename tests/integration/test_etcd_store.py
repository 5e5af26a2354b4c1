"""The etcd store's own contract, on a real 3-member etcd: fenced writes, one transaction per
commit, a site prefix that is a table or is refused."""

from __future__ import annotations

import pytest
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

from seatd.errors import Fenced, StorageFailed, StoreDamaged
from seatd.model import Granted
from seatd.store.etcd import EtcdConfig, EtcdStore, channel
from tests.etcd import EtcdCluster, config_for, free_port, lead
from tests.integration.test_store import session


def put(config: EtcdConfig, key: bytes, value: bytes) -> None:
    with channel(config, config.endpoints[0]) as ch:
        rpc_pb2_grpc.KVStub(ch).Put(rpc_pb2.PutRequest(key=key, value=value), timeout=10)


def test_a_write_with_a_stale_fence_commits_nothing(etcd_site: EtcdConfig) -> None:
    """Once another instance leads, the deposed one's commit raises Fenced and changes
    nothing: no session, no journal entry, the same head."""
    deposed = EtcdStore(etcd_site, fence=lead(etcd_site, "a"))
    deposed.commit([Granted(session(1))])
    leader = EtcdStore(etcd_site, fence=lead(etcd_site, "b"))
    head = leader.recorded_head()
    with pytest.raises(Fenced, match="no longer the cluster's leader"):
        deposed.commit([Granted(session(2))])
    assert [s.id for s in leader.load().sessions] == [1]
    assert (leader.recorded_head(), len(leader.journal_entries())) == (head, 1)
    deposed.close()
    leader.close()


def test_a_store_without_the_leadership_commits_nothing(etcd_site: EtcdConfig) -> None:
    """With no fence (a standby, or a leader that stepped down) every commit is refused."""
    store = EtcdStore(etcd_site)
    with pytest.raises(Fenced, match="does not hold the leadership"):
        store.commit([Granted(session(1))])
    assert store.load().sessions == []
    store.close()


def test_the_chain_continues_across_leaders(etcd_site: EtcdConfig) -> None:
    """A new leader loads the table and its commits extend the same hash chain."""
    first = EtcdStore(etcd_site, fence=lead(etcd_site, "a"))
    first.commit([Granted(session(1))])
    second = EtcdStore(etcd_site, fence=lead(etcd_site, "b"))
    assert [s.id for s in second.load().sessions] == [1]
    second.commit([Granted(session(2))])
    assert second.verify_journal() == (2, None, 2)
    first.close()
    second.close()


def test_a_commit_too_large_for_one_transaction_commits_nothing(etcd_site: EtcdConfig) -> None:
    """A commit needing more operations than etcd takes in one transaction is refused
    whole, saying which setting to raise."""
    small = EtcdConfig(etcd_site.endpoints, site=etcd_site.site, max_txn_ops=64)
    store = EtcdStore(small, fence=lead(small))
    with pytest.raises(StorageFailed, match="max_txn_ops"):
        store.commit([Granted(session(i)) for i in range(1, 61)])
    assert (store.load().sessions, store.journal_entries()) == ([], [])
    store.close()


def test_two_instances_on_an_empty_site_make_one_table(etcd_site: EtcdConfig) -> None:
    """The first open of an empty prefix creates the site; the next finds it (one base id)."""
    first = EtcdStore(etcd_site)
    second = EtcdStore(etcd_site)
    assert (first.created, second.created) == (True, False)
    assert first.load().base_id == second.load().base_id
    first.close()
    second.close()


def test_a_prefix_holding_records_but_no_table_is_refused(etcd_site: EtcdConfig) -> None:
    """Debris under the site's prefix is never taken for a first start."""
    put(etcd_site, etcd_site.prefix + b"sessions/0000000000000001", b"{}")
    with pytest.raises(StoreDamaged, match="holds 1 records but no seat table"):
        EtcdStore(etcd_site)


def test_capacity_is_measured_against_the_quota(etcd_site: EtcdConfig) -> None:
    """The store's ceiling is etcd's quota as configured; used is what etcd reports."""
    quota = EtcdConfig(etcd_site.endpoints, site=etcd_site.site, quota_bytes=1 << 30)
    store = EtcdStore(quota)
    assert store.capacity.ceiling == 1 << 30
    assert 0 < store.capacity.used <= store.capacity.map_size
    store.close()


def test_an_unreachable_member_is_skipped_for_reads(etcd_site: EtcdConfig) -> None:
    """A dead endpoint first in the list costs a retry, not the read."""
    gap = (f"127.0.0.1:{free_port()}", *etcd_site.endpoints)
    store = EtcdStore(EtcdConfig(gap, site=etcd_site.site, timeout=2.0))
    assert store.load().next_id == 1
    store.close()


def test_losing_quorum_fails_the_commit_clearly(etcd_cluster: EtcdCluster) -> None:
    """With two of three members gone a commit raises StorageFailed naming etcd."""
    config = config_for(etcd_cluster, "q", timeout=2.0)
    store = EtcdStore(config, fence=lead(config))
    store.commit([Granted(session(1))])
    etcd_cluster.kill(1)
    etcd_cluster.kill(2)
    with pytest.raises(StorageFailed, match="etcd"):
        store.commit([Granted(session(2))])
    store.close()
