"""Seat policy through the service and the wire: refusals that name their rule (journal,
library exception), and a wait queue served by priority that passes over a group at its
max. Real LMDB and grpc.aio, FakeClock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from seatclient import AsyncSeatClient, PolicyRefused
from seatclient.contract import Reason

from seatd.policy import parse
from seatd.service import AcquireRequest, SeatService
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
