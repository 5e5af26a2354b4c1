"""Seat policy through the service and the wire: refusals that name their rule (journal,
library exception), a wait queue served by priority that passes over a group at its max,
idle reclaim (warning, withdrawal, eviction to a waiter), and the admin's view (policy show
and check, sessions with group and idle time). Real LMDB and grpc.aio, FakeClock."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import grpc
import pytest
from seatclient import AsyncSeatClient, PolicyRefused
from seatclient.contract import Reason
from seatclient.v1 import admin_pb2

from seatd.policy import parse
from seatd.service import (
    Acquired,
    AcquireRequest,
    EvictedNotice,
    IdleNotice,
    SeatService,
    Stream,
)
from tests.fakes import FakeClock
from tests.integration.conftest import Running, until

INTERNS: dict[str, Any] = {"groups": {"interns": {"users": ["IA", "IB", "IC"], "max": 1}}}


def request(user: str, wait: float = 0.0) -> AcquireRequest:
    return AcquireRequest(
        user_code=user,
        user_name=user,
        hostname=f"pc-{user.lower()}",
        client_version="15",
        idempotency_key=f"key-{user}",
        ip="10.0.0.9",
        wait=wait,
    )


async def test_the_library_raises_a_typed_error_naming_the_rule(running: Running) -> None:
    """A max refusal reaches the library as PolicyRefused with its code, rule and group."""
    running.service.set_policy(parse(INTERNS))
    async with AsyncSeatClient(f"127.0.0.1:{running.port}") as client:
        held = await client.acquire(user_code="IA")
        with pytest.raises(PolicyRefused) as refused:
            await client.acquire(user_code="IB")
        await held.release()
    e = refused.value
    assert (e.code, e.rule, e.group) == (Reason.POLICY_MAX, "max", "interns")
    assert str(e) == "group interns is at its max of 1"


async def test_a_policy_refusal_is_journaled_with_its_rule(service: SeatService) -> None:
    """The journal's refusal names the reason code and the rule's sentence."""
    service.set_policy(parse(INTERNS))
    await service.acquire(request("IA"))
    with pytest.raises(Exception, match="at its max"):
        await service.acquire(request("IB"))
    refused = [e for e in service.store.journal_entries() if e["kind"] == "refused"]
    assert "POLICY_MAX: group interns is at its max of 1" in str(refused[-1])


async def test_a_waiter_whose_group_is_at_its_max_is_passed_over(service: SeatService) -> None:
    """cap 2, interns max 1: with IA seated and IB waiting first, a freed seat goes to the
    next waiter the policy allows."""
    service.set_policy(parse(INTERNS))
    first = await service.acquire(request("IA"))
    other = await service.acquire(request("ZZ"))
    ib = asyncio.ensure_future(service.acquire(request("IB", wait=60)))
    await until(lambda: service.waiting == 1)
    yy = asyncio.ensure_future(service.acquire(request("YY", wait=60)))
    await until(lambda: service.waiting == 2)
    await service.release(other.session.id, other.session.token)
    assert (await yy).session.holder.user_code == "YY"
    assert not ib.done()
    await service.release(first.session.id, first.session.token)
    assert (await ib).session.holder.user_code == "IB"


async def test_a_higher_priority_waiter_is_served_first(service: SeatService) -> None:
    """A manager (priority 10) who queued last gets the next seat."""
    service.set_policy(parse({"groups": {"managers": {"users": ["MM"], "priority": 10}}}))
    held = [await service.acquire(request(u)) for u in ("AA", "BB")]
    early = asyncio.ensure_future(service.acquire(request("CC", wait=60)))
    await until(lambda: service.waiting == 1)
    boss = asyncio.ensure_future(service.acquire(request("MM", wait=60)))
    await until(lambda: service.waiting == 2)
    await service.release(held[0].session.id, held[0].session.token)
    assert (await boss).session.holder.user_code == "MM"
    assert (await boss).queue_position == 1
    await service.release(held[1].session.id, held[1].session.token)
    assert (await early).session.holder.user_code == "CC"


async def test_a_reload_raising_a_max_serves_the_waiter_at_once(service: SeatService) -> None:
    """The waiting intern is served as soon as a reload lifts the max; nobody is dropped."""
    service.set_policy(parse(INTERNS))
    await service.acquire(request("IA"))
    ib = asyncio.ensure_future(service.acquire(request("IB", wait=60)))
    await until(lambda: service.waiting == 1)
    service.set_policy(parse({"groups": {"interns": {"users": ["IA", "IB"], "max": 2}}}))
    assert (await ib).session.holder.user_code == "IB"
    assert service.arbiter.in_use == 2


IDLE: dict[str, Any] = {"idle": {"reclaim_after": "30m", "warn_before": "2m"}}


def notices(stream: Stream) -> list[object]:
    seen = []
    while not stream.outbox.empty():
        seen.append(stream.outbox.get_nowait())
    return seen


async def idle_house(service: SeatService, clock: FakeClock) -> tuple[Acquired, Stream, Stream]:
    """cap 2, both seats held; AA idle from now on, BB active."""
    service.set_policy(parse(IDLE))
    aa = await service.acquire(request("AA"))
    bb = await service.acquire(request("BB"))
    _, stream = service.attach(aa.session.id, aa.session.token)
    _, other = service.attach(bb.session.id, bb.session.token)
    service.ping(stream, 1, idle=0.0)
    for minute in range(31):
        clock.advance(60)
        service.ping(stream, minute + 2, idle=60.0 * (minute + 1))
        service.ping(other, minute + 2, idle=1.0)
    notices(stream)
    return aa, stream, other


async def test_an_idle_seat_is_warned_then_evicted_and_the_waiter_served(
    service: SeatService, clock: FakeClock
) -> None:
    """Idle 31 min with CC waiting: a warning, then after warn_before the eviction by the
    policy with the reason, and CC gets the seat."""
    aa, stream, _ = await idle_house(service, clock)
    cc = asyncio.ensure_future(service.acquire(request("CC", wait=600)))
    await until(lambda: service.waiting == 1)
    await service.reap()
    (warning,) = notices(stream)
    assert isinstance(warning, IdleNotice) and not warning.withdrawn
    assert warning.evict_at == clock.wall() + timedelta(minutes=2)
    clock.advance(60)
    service.ping(stream, 100, idle=32 * 60.0)
    clock.advance(60)
    service.ping(stream, 101, idle=33 * 60.0)
    await service.reap()
    assert (await cc).session.holder.user_code == "CC"
    ended = [n for n in notices(stream) if isinstance(n, EvictedNotice)]
    assert [(e.ending.by, e.ending.reason) for e in ended] == [
        ("policy", "idle for 33 min; the seat went to a waiting user")
    ]
    assert service.counters.evictions["idle"] == 1
    assert aa.session.id not in {s.id for s in service.arbiter.sessions()}


async def test_activity_after_the_warning_withdraws_it_and_keeps_the_seat(
    service: SeatService, clock: FakeClock
) -> None:
    """A ping reporting activity after the warning: a withdrawn notice, no eviction."""
    aa, stream, other = await idle_house(service, clock)
    waiter = asyncio.ensure_future(service.acquire(request("CC", wait=600)))
    await until(lambda: service.waiting == 1)
    await service.reap()
    notices(stream)
    clock.advance(30)
    service.ping(stream, 100, idle=2.0)
    withdrawn = [n for n in notices(stream) if isinstance(n, IdleNotice)]
    assert [n.withdrawn for n in withdrawn] == [True]
    for seq in range(101, 105):
        clock.advance(30)
        service.ping(stream, seq, idle=float(30 * (seq - 100)))
        service.ping(other, seq, idle=1.0)
        await service.reap()
    assert aa.session.id in {s.id for s in service.arbiter.sessions()}
    assert service.waiting == 1
    waiter.cancel()


async def test_admins_see_each_sessions_group_and_idle_time(running: Running) -> None:
    """ListSessions shows the policy group and the reported idle time."""
    service = running.service
    service.set_policy(parse(INTERNS))
    ia = await service.acquire(request("IA"))
    await service.acquire(request("ZZ"))
    _, stream = service.attach(ia.session.id, ia.session.token)
    service.ping(stream, 1, idle=90.0)
    listed = (await running.admin.ListSessions(admin_pb2.ListSessionsRequest())).sessions
    assert [(s.user_code, s.group) for s in listed] == [("IA", "interns"), ("ZZ", "")]
    assert listed[0].idle.seconds == 90 and not listed[1].HasField("idle")


async def test_policy_show_counts_each_groups_seats(running: Running) -> None:
    """GetPolicy: the rules in force and each group's seats in use."""
    running.service.set_policy(parse(INTERNS))
    await running.service.acquire(request("IA"))
    shown = await running.admin.GetPolicy(admin_pb2.GetPolicyRequest())
    (group,) = shown.groups
    assert (group.name, group.in_use, group.max, group.reserve) == ("interns", 1, 1, 0)
    assert (shown.seat_cap, shown.in_use, shown.rules) == (2, 1, 1)


async def test_policy_check_names_the_sessions_a_new_policy_would_refuse(
    running: Running,
) -> None:
    """CheckPolicy: two interns seated, a max of 1 flags one of them; nothing changes."""
    service = running.service
    await service.acquire(request("IA"))
    await service.acquire(request("IB"))
    toml = '[policy.groups.interns]\nusers = ["IA", "IB"]\nmax = 1\n'
    checked = await running.admin.CheckPolicy(admin_pb2.CheckPolicyRequest(toml=toml))
    assert checked.policy.groups[0].in_use == 2
    assert {(b.session.user_code, b.reason) for b in checked.breaches} == {
        ("IA", Reason.POLICY_MAX),
        ("IB", Reason.POLICY_MAX),
    }
    assert checked.breaches[0].message == "group interns is at its max of 1"
    assert service.arbiter.policy.groups == () and service.arbiter.in_use == 2


async def test_policy_check_refuses_a_bad_file_naming_the_key(running: Running) -> None:
    """A policy mistake is INVALID_ARGUMENT with the key at fault."""
    bad = '[policy.groups.x]\nusers = ["A"]\nmaxx = 1\n'
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await running.admin.CheckPolicy(admin_pb2.CheckPolicyRequest(toml=bad))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "policy.groups.x.maxx" in (refused.value.details() or "")


async def test_a_leader_pause_moves_the_idle_eviction_by_its_length(
    service: SeatService, clock: FakeClock
) -> None:
    """Cluster mode: AA is warned, its user comes back during a leader's pause, and the ping
    saying so is refused. When the leader grants again the eviction deadline has moved by
    the pause, so AA is not evicted before its workstation can reattach and say so."""
    from tests.integration.test_leadership import Switch

    switch = Switch()
    service.leadership = switch
    _, stream, other = await idle_house(service, clock)
    waiter = asyncio.ensure_future(service.acquire(request("CC", wait=600)))
    await until(lambda: service.waiting == 1)
    await service.reap()
    aa = next(s for s in service.arbiter.sessions() if s.holder.user_code == "AA")
    assert aa.idle_evict_at is not None
    for seq in range(50, 61):  # both workstations ping on; AA's user is still away
        clock.advance(10)
        service.ping(stream, seq, idle=32 * 60.0 + 10 * (seq - 50))
        service.ping(other, seq, idle=1.0)
    assert clock.monotonic() == aa.idle_evict_at - 10
    switch.leads = False
    await service.reap()
    clock.advance(5)
    service.ping(stream, 100, idle=2.0)  # refused: NOT_LEADER
    clock.advance(10)
    switch.leads = True
    await service.reap()
    assert aa.id in {s.id for s in service.arbiter.sessions()}
    assert service.waiting == 1
    waiter.cancel()
