"""The leader's proof of its etcd lease (`seatd.cluster.lease`) and what the service is told
(`Election.check`), on a fake clock."""

from __future__ import annotations

import grpc
import pytest

from seatd.cluster.election import Election, Instance
from seatd.cluster.lease import LeaderLease, LeaseTiming
from seatd.errors import NotLeader
from seatd.store.etcd import Fence
from tests.fakes import FakeClock

ME = Instance("a", "10.0.0.1:7117")
OTHER = Instance("b", "10.0.0.2:7117")


def test_a_keepalive_proves_the_lease_from_when_it_was_sent() -> None:
    """An answer with TTL T to a keepalive sent at t proves the lease until t + T, not
    from when the answer arrived."""
    lease = LeaderLease(LeaseTiming(4.0))
    lease.renewed(sent_at=100.0, ttl=4.0)
    assert lease.proven_until == 104.0


def test_granting_stops_a_margin_before_the_lease_can_end() -> None:
    """With TTL 4 (renewals every 1 s) the leader grants until 3.5 s after the last
    confirmed send: two missed renewals are tolerated, never the lease's last moment."""
    timing = LeaseTiming(4.0)
    assert (timing.renew_interval, timing.margin) == (1.0, 0.5)
    lease = LeaderLease(timing)
    lease.renewed(sent_at=100.0, ttl=4.0)
    assert lease.granting(103.49)
    assert not lease.granting(103.5)


def test_an_answer_with_no_time_left_proves_nothing() -> None:
    """etcd answers TTL 0 for a lease that has ended: that extends nothing."""
    lease = LeaderLease(LeaseTiming(4.0))
    lease.renewed(sent_at=100.0, ttl=4.0)
    lease.renewed(sent_at=102.0, ttl=0.0)
    assert lease.proven_until == 104.0


def test_an_older_answer_never_shortens_the_proof() -> None:
    """A late answer to an earlier send leaves the later proof in place."""
    lease = LeaderLease(LeaseTiming(4.0))
    lease.renewed(sent_at=102.0, ttl=4.0)
    lease.renewed(sent_at=101.0, ttl=4.0)
    assert lease.proven_until == 106.0


def election(clock: FakeClock) -> Election:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")
    renewals = grpc.insecure_channel("127.0.0.1:9")
    return Election(
        channel, renewals=renewals, key=b"/seatd/s/leader", site="s", me=ME, ttl=4, clock=clock
    )


def leading(clock: FakeClock) -> Election:
    e = election(clock)
    e.fence = Fence(b"/seatd/s/leader", 7)
    e.leader = ME
    e.lease.renewed(clock.monotonic(), 4.0)
    return e


async def test_a_leader_within_its_margin_may_arbitrate() -> None:
    """Right after a confirmed renewal the check passes."""
    clock = FakeClock()
    leading(clock).check()


async def test_a_leader_paused_past_its_margin_refuses_at_the_first_check() -> None:
    """A process frozen (SIGSTOP) past its margin resumes refusing: the check reads the
    clock, it does not wait for the renewal loop to notice."""
    clock = FakeClock()
    e = leading(clock)
    clock.advance(3.5)
    with pytest.raises(NotLeader, match="could not be renewed in time"):
        e.check()


async def test_an_elected_instance_still_loading_names_itself() -> None:
    """Between winning and serving (the table loading) its standby listeners name this
    instance as the leader: workstations retry here."""
    with pytest.raises(NotLeader, match="just elected") as refused:
        raise leading(FakeClock()).refusal()
    assert (refused.value.leader, refused.value.name) == (ME.address, ME.name)


async def test_a_standby_refusal_names_the_leader_it_saw() -> None:
    """A standby refuses with the leader's name and advertised address."""
    e = election(FakeClock())
    e.leader = OTHER
    with pytest.raises(NotLeader) as refused:
        e.check()
    assert (refused.value.leader, refused.value.name) == (OTHER.address, OTHER.name)
    assert "b at 10.0.0.2:7117" in refused.value.message


async def test_a_standby_with_no_leader_known_says_to_retry() -> None:
    """While no leader is known the refusal has no address and says to retry."""
    with pytest.raises(NotLeader, match="no leader is known yet") as refused:
        election(FakeClock()).check()
    assert refused.value.leader == ""


def test_the_leader_key_round_trips_and_rejects_garbage() -> None:
    """What a leader writes in its key reads back; a value that is not ours reads as None."""
    assert Instance.decode(ME.encode()) == ME
    assert Instance.decode(b"not json") is None
