"""The election against a real etcd (one member here; the e2e tests run three)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import grpc
import pytest
import structlog.testing
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

from seatd.clock import SystemClock
from seatd.cluster.config import ClusterConfig
from seatd.cluster.election import Election, Instance
from seatd.cluster.status import Beacon, gather
from seatd.errors import NotLeader
from seatd.store.etcd import EtcdConfig, aio_channel, members_channel
from tests.etcd import EtcdCluster
from tests.integration.conftest import until

# Bounded waits: these run on a shared, loaded machine.
DEADLINE = 30.0


@pytest.fixture
async def channel(etcd_site: EtcdConfig) -> AsyncIterator[grpc.aio.Channel]:
    ch = aio_channel(etcd_site)
    yield ch
    await ch.close()


@pytest.fixture
def renewals(etcd_site: EtcdConfig) -> Iterator[grpc.Channel]:
    ch = members_channel(etcd_site)
    yield ch
    ch.close()


@pytest.fixture
def candidate(
    channel: grpc.aio.Channel, renewals: grpc.Channel, etcd_site: EtcdConfig
) -> Callable[..., Election]:
    """An instance of the test's own site."""

    def make(name: str, ttl: int = 2) -> Election:
        me = Instance(name, f"10.0.0.{ord(name[0]) % 200}:7117")
        return Election(
            channel,
            renewals=renewals,
            key=etcd_site.leader_key,
            site=etcd_site.site,
            me=me,
            ttl=ttl,
            clock=SystemClock(),
        )

    return make


async def test_the_first_candidate_leads_and_its_fence_is_the_key_create_revision(
    channel: grpc.aio.Channel, candidate: Callable[..., Election], etcd_site: EtcdConfig
) -> None:
    """The winner's fence is the leader key with the revision that created it."""
    a = candidate("a")
    fence = await asyncio.wait_for(a.campaign(), DEADLINE)
    kv = rpc_pb2_grpc.KVStub(channel)
    found = (await kv.Range(rpc_pb2.RangeRequest(key=etcd_site.leader_key))).kvs[0]
    assert (fence.key, fence.revision) == (found.key, found.create_revision)
    assert Instance.decode(found.value) == a.me
    a.check()
    await a.resign()


async def test_a_standby_waits_names_the_leader_and_leads_once_it_resigns(
    channel: grpc.aio.Channel, candidate: Callable[..., Election], etcd_site: EtcdConfig
) -> None:
    """While a leads, b refuses naming a; when a resigns, b's campaign wins at once."""
    a, b = candidate("a"), candidate("b")
    await asyncio.wait_for(a.campaign(), DEADLINE)
    b_campaign = asyncio.create_task(b.campaign())
    for _ in range(int(DEADLINE / 0.01)):
        if b.leader is not None:
            break
        await asyncio.sleep(0.01)
    with pytest.raises(NotLeader) as refused:
        b.check()
    assert refused.value.leader == a.me.address
    await a.resign()
    fence = await asyncio.wait_for(b_campaign, DEADLINE)
    assert fence.revision > 0
    b.check()
    await b.resign()


async def test_a_leader_that_stops_renewing_is_succeeded_after_its_ttl(
    channel: grpc.aio.Channel, candidate: Callable[..., Election], etcd_site: EtcdConfig
) -> None:
    """A leader whose lease is not kept alive (a dead process) loses the key after the
    TTL: a standby then leads."""
    a, b = candidate("a", ttl=2), candidate("b")
    await asyncio.wait_for(a.campaign(), DEADLINE)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(b.campaign(), DEADLINE)
    assert loop.time() - started >= 1.0
    await b.resign()


async def test_a_held_lease_keeps_leading_past_its_ttl(
    channel: grpc.aio.Channel, candidate: Callable[..., Election]
) -> None:
    """While `hold` renews, the leader stays leader well past one TTL."""
    a = candidate("a", ttl=2)
    await asyncio.wait_for(a.campaign(), DEADLINE)
    holding = asyncio.create_task(a.hold())
    await asyncio.sleep(3.0)
    assert not holding.done()
    a.check()
    holding.cancel()
    await a.resign()


async def test_a_leader_whose_event_loop_is_busy_past_its_margin_keeps_leading(
    candidate: Callable[..., Election],
) -> None:
    """The lease is renewed off the event loop: a loop held up longer than the margin (a
    reattach storm at a takeover) does not depose a leader whose etcd answers."""
    a = candidate("a", ttl=2)
    await asyncio.wait_for(a.campaign(), DEADLINE)
    holding = asyncio.create_task(a.hold())
    await asyncio.sleep(0)
    time.sleep(3.0)  # the loop does nothing else meanwhile  # noqa: ASYNC251
    a.check()
    assert not holding.done()
    holding.cancel()
    await a.resign()


async def test_a_leader_whose_lease_is_revoked_steps_down(
    channel: grpc.aio.Channel, candidate: Callable[..., Election]
) -> None:
    """etcd answering that the lease is gone ends `hold` with the reason, and the check
    refuses from then on. (The keepalive's answer or the key's read may see it first: both
    say the lease has ended.)"""
    a = candidate("a", ttl=2)
    await asyncio.wait_for(a.campaign(), DEADLINE)
    holding = asyncio.create_task(a.hold())
    await rpc_pb2_grpc.LeaseStub(channel).LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=a.lease_id))
    why = await asyncio.wait_for(holding, DEADLINE)
    assert "lease has ended" in why
    with pytest.raises(NotLeader):
        a.check()


async def test_cluster_status_lists_instances_the_leader_and_etcd_members(
    candidate: Callable[..., Election], etcd_shared: EtcdCluster, etcd_site: EtcdConfig
) -> None:
    """After a heartbeat each, status names both instances, which one leads, and etcd's
    member as healthy."""
    a, b = candidate("a"), candidate("b")
    await asyncio.wait_for(a.campaign(), DEADLINE)
    clock = SystemClock()
    await Beacon(a, clock, 1.0).tick()
    await Beacon(b, clock, 1.0).tick()
    endpoints = ",".join(f"http://{e}" for e in etcd_shared.endpoints)
    found = await gather(
        ClusterConfig(etcd=endpoints, advertise="x:1", site=etcd_site.site), clock.wall()
    )
    roles = {i["name"]: i["role"] for i in found["instances"]}
    assert (found["leader"], roles) == ("a", {"a": "leader", "b": "standby"})
    assert [m["healthy"] for m in found["etcd"]] == [True, True, True]
    await a.resign()


async def test_a_leader_whose_key_is_deleted_by_hand_steps_down_at_its_next_renewal(
    channel: grpc.aio.Channel, candidate: Callable[..., Election], etcd_site: EtcdConfig
) -> None:
    """The leader key deleted by hand while the lease renews: `hold` ends at the next
    renewal (well before a TTL, which the renewing lease would never reach), saying why, and
    the check refuses from then on."""
    a = candidate("a", ttl=8)
    await asyncio.wait_for(a.campaign(), DEADLINE)
    holding = asyncio.create_task(a.hold())
    await rpc_pb2_grpc.KVStub(channel).DeleteRange(
        rpc_pb2.DeleteRangeRequest(key=etcd_site.leader_key)
    )
    loop = asyncio.get_running_loop()
    deleted = loop.time()
    why = await asyncio.wait_for(holding, 8.0)
    assert "leader key is gone" in why
    assert loop.time() - deleted < 8.0
    with pytest.raises(NotLeader):
        a.check()
    await a.resign()


async def test_a_foreign_leader_key_is_reported_never_touched_and_its_deletion_frees_the_election(
    channel: grpc.aio.Channel,
    candidate: Callable[..., Election],
    etcd_shared: EtcdCluster,
    etcd_site: EtcdConfig,
) -> None:
    """A leader record put by hand with no lease (it would never end by itself): a candidate
    campaigns, names no leader, says elections are blocked; `cluster status` shows the command
    that clears it; the key stays exactly as written; deleted, the candidate leads."""
    kv = rpc_pb2_grpc.KVStub(channel)
    record = Instance("ghost", "10.9.9.9:7117").encode()
    await kv.Put(rpc_pb2.PutRequest(key=etcd_site.leader_key, value=record))
    a = candidate("a")
    with structlog.testing.capture_logs() as logs:
        campaign = asyncio.create_task(a.campaign())
        await until(lambda: bool(a.blocked), steps=int(DEADLINE * 100))
    assert "no lease" in a.blocked
    assert not campaign.done()
    refusal = a.refusal()
    assert refusal.leader == "" and "elections are blocked" in str(refusal)
    assert [e["event"] for e in logs].count("cluster.leader_key_foreign") == 1

    endpoints = ",".join(f"http://{e}" for e in etcd_shared.endpoints)
    found = await gather(
        ClusterConfig(etcd=endpoints, advertise="x:1", site=etcd_site.site),
        SystemClock().wall(),
    )
    assert found["leader"] == ""
    assert "no lease" in found["elections_blocked"]
    assert found["unblock"].endswith(f"del {etcd_site.leader_key.decode()}")

    held = await kv.Range(rpc_pb2.RangeRequest(key=etcd_site.leader_key))
    assert (held.kvs[0].value, held.kvs[0].lease, held.kvs[0].version) == (record, 0, 1)

    await kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=etcd_site.leader_key))
    await asyncio.wait_for(campaign, DEADLINE)
    assert a.leading and a.blocked == ""
    await a.resign()
