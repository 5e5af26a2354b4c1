"""The leader's proof of its etcd lease (`seatd.cluster.lease`) and what the service is told
(`Election.check`), on a fake clock."""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc
import pytest
from aetcd.rpc import kv_pb2, rpc_pb2

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


def test_granting_pauses_at_the_margin_but_the_lease_is_kept_two_ttls_past_its_end() -> None:
    """Unproven, the leader stops granting at the margin and goes on asking etcd for the
    same lease until two TTLs past its proven end (an etcd election is ridden out)."""
    lease = LeaderLease(LeaseTiming(4.0))
    lease.renewed(sent_at=100.0, ttl=4.0)
    assert not lease.granting(103.5)
    assert lease.keeping(111.99)
    assert not lease.keeping(112.0)


def test_an_unproven_lease_is_asked_for_again_sooner() -> None:
    """After an answer that proved nothing the next keepalive goes a quarter of a renewal
    interval later, after a proof a whole interval later."""
    lease = LeaderLease(LeaseTiming(4.0))
    assert lease.next_renewal(100.0, proved=True) == 101.0
    assert lease.next_renewal(100.0, proved=False) == 100.25


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
    with pytest.raises(NotLeader, match="etcd has not confirmed its lease in time"):
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


# -- the renewing thread, on the fake clock ----------------------------------------------------


class NoLeader(grpc.RpcError):
    """What an etcd member answers a keepalive sent with `hasleader` while it has no leader."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "etcdserver: no leader"


class FakeStop(threading.Event):
    """The renewing thread's stop event, whose waits move the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        self.clock.advance(timeout or 0.0)
        return self.is_set()


LEASE_ID = 42
REVISION = 7


def renewing(
    clock: FakeClock, etcd: Callable[[float], int | None], answers_in: float = 0.0
) -> tuple[Election, list[bool]]:
    """A leader (TTL 4, proven now) whose keepalives etcd answers with `etcd(now)` (a TTL;
    None: raise "no leader") after `answers_in` seconds (a shorter budget: the deadline is
    exceeded), its key always this term's. Returns it, and whether it was granting at each
    keepalive sent."""
    e = leading(clock)
    e.lease_id = LEASE_ID
    granting: list[bool] = []

    def keepalive(lease_id: int, budget: float) -> int | None:
        assert lease_id == LEASE_ID
        granting.append(e.leading)
        ttl = etcd(clock.monotonic())
        if ttl is None:
            raise NoLeader()
        if budget < answers_in:
            clock.advance(budget)
            raise NoLeader()  # what a deadline exceeded is to the renewing thread
        clock.advance(answers_in)
        return ttl

    def read_key(budget: float) -> rpc_pb2.RangeResponse:
        key = kv_pb2.KeyValue(
            key=b"/seatd/s/leader", create_revision=REVISION, mod_revision=REVISION, lease=LEASE_ID
        )
        return rpc_pb2.RangeResponse(kvs=[key], count=1)

    e._keepalive = keepalive  # type: ignore[method-assign]
    e._read_key = read_key  # type: ignore[method-assign]
    return e, granting


async def test_a_leader_rides_out_an_etcd_election_on_the_same_lease() -> None:
    """etcd answers "no leader" for 3.8 s (past the margin, 3.5 s): the leader stops
    granting meanwhile, does not step down, and grants again from the first keepalive
    etcd answers on the same lease."""
    clock = FakeClock()
    start = clock.monotonic()
    stop = FakeStop(clock)

    def etcd(now: float) -> int | None:
        if now - start >= 12.0:
            stop.set()  # the test is over
        return None if 0.5 <= now - start < 4.3 else 4

    e, granting = renewing(clock, etcd)
    assert e._renew(stop, LEASE_ID) == ""
    assert False in granting
    assert granting[-1]
    assert e.leading


async def test_a_paused_leader_gives_etcd_more_than_a_round_trip_to_answer() -> None:
    """Past its proof, the leader still waits a retry interval for each keepalive: an etcd
    that answers in 0.2 s once it has elected its raft leader (loaded, or a member away)
    proves the lease again, where a 50 ms deadline would have ridden the whole patience
    out and stepped down."""
    clock = FakeClock()
    start = clock.monotonic()
    stop = FakeStop(clock)

    def etcd(now: float) -> int | None:
        if now - start >= 12.0:
            stop.set()
        return None if 0.5 <= now - start < 4.3 else 4

    e, granting = renewing(clock, etcd, answers_in=0.2)
    assert e._renew(stop, LEASE_ID) == ""
    assert False in granting and granting[-1]


async def test_a_leader_retries_every_quarter_interval_while_etcd_has_no_leader() -> None:
    """Keepalives refused for "no leader" are retried four times per renewal interval, so
    the first one after etcd's election is not a whole interval late."""
    clock = FakeClock()
    start = clock.monotonic()
    stop = FakeStop(clock)
    sent: list[float] = []

    def etcd(now: float) -> int | None:
        sent.append(now - start)
        if now - start >= 3.0:
            stop.set()
        return None if now - start >= 1.0 else 4

    e, _ = renewing(clock, etcd)
    e._renew(stop, LEASE_ID)
    assert [round(t, 2) for t in sent] == [0.0, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0]


async def test_a_leader_etcd_never_answers_steps_down_two_ttls_past_its_lease() -> None:
    """No answer at all (quorum lost, or this instance cut off): granting stops at the
    margin, and the leader steps down two TTLs after its proven lease would have ended."""
    clock = FakeClock()
    start = clock.monotonic()
    e, granting = renewing(clock, lambda now: None)
    why = e._renew(FakeStop(clock), LEASE_ID)
    assert "etcd has not confirmed its lease for 8 s past its end" in why
    assert 12.0 <= clock.monotonic() - start < 12.0 + e.lease.timing.retry_interval
    assert granting[0] and not granting[-1]


async def test_a_paused_leader_told_its_lease_ended_steps_down_at_once() -> None:
    """While not granting, a keepalive answered with TTL 0 (the lease expired, another
    instance may lead) ends the term at that answer, not one TTL later."""
    clock = FakeClock()
    start = clock.monotonic()

    def etcd(now: float) -> int | None:
        if now - start < 0.5:
            return 4
        return None if now - start < 4.0 else 0

    e, _ = renewing(clock, etcd)
    assert e._renew(FakeStop(clock), LEASE_ID) == "etcd says its lease has ended"
    assert clock.monotonic() - start < 4.5
