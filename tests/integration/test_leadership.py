"""The service asks its leadership before every grant, attach and renewal (cluster mode)."""

from __future__ import annotations

import asyncio

import pytest

from seatd.errors import NotLeader
from seatd.service import Acquired, Pong, SeatService
from tests.fakes import FakeClock
from tests.integration.conftest import until
from tests.integration.test_service import request, take


class Switch:
    """A leadership that holds until turned off."""

    def __init__(self) -> None:
        self.leads = True

    def __call__(self) -> None:
        if not self.leads:
            raise NotLeader("10.0.0.2:7117", "b")


async def test_a_deposed_leader_grants_nothing(service: SeatService) -> None:
    """Acquire on an instance past its margin is NOT_LEADER and leaves the table alone."""
    switch = Switch()
    service.leadership = switch
    switch.leads = False
    with pytest.raises(NotLeader):
        await service.acquire(request("AA"))
    assert service.arbiter.in_use == 0


async def test_a_deposed_leader_renews_nothing_and_ends_the_stream(
    service: SeatService, clock: FakeClock
) -> None:
    """A ping on an instance past its margin is not answered: the stream ends NOT_LEADER
    and the session's deadline stays where it was."""
    switch = Switch()
    service.leadership = switch
    s = await take(service, request("AA"))
    _, stream = service.attach(s.id, s.token)
    deadline = service.arbiter.sessions()[0].expires_at
    clock.advance(5)
    switch.leads = False
    service.ping(stream, 1)
    assert stream.outbox.get_nowait() is None
    assert isinstance(stream.error, NotLeader)
    assert service.arbiter.sessions()[0].expires_at == deadline


async def test_a_leader_within_its_margin_renews(service: SeatService) -> None:
    """While leadership holds, a ping is answered as usual."""
    service.leadership = Switch()
    s = await take(service, request("AA"))
    _, stream = service.attach(s.id, s.token)
    service.ping(stream, 1)
    assert isinstance(stream.outbox.get_nowait(), Pong)


async def test_a_paused_leader_expires_no_session(service: SeatService, clock: FakeClock) -> None:
    """Past a session's deadline while leadership is refused (renewals refused too), the
    reaper frees nothing: the silence is the leader's own."""
    switch = Switch()
    service.leadership = switch
    s = await take(service, request("AA"))
    switch.leads = False
    clock.advance(service.arbiter.sessions()[0].expires_at - clock.monotonic() + 1)
    assert await service.reap() == []
    assert [x.id for x in service.arbiter.sessions()] == [s.id]


async def test_a_leader_granting_again_adds_the_pause_to_every_deadline(
    service: SeatService, clock: FakeClock
) -> None:
    """Leadership refused for 100 s, then held again: each session's deadline moves 100 s
    later, so none expires for renewals the leader refused."""
    switch = Switch()
    service.leadership = switch
    await take(service, request("AA"))
    deadline = service.arbiter.sessions()[0].expires_at
    switch.leads = False
    assert await service.reap() == []
    clock.advance(100)
    switch.leads = True
    assert await service.reap() == []
    assert service.arbiter.sessions()[0].expires_at == deadline + 100


async def released_while_paused(service: SeatService) -> tuple[Switch, asyncio.Future[Acquired]]:
    """cap 2 held by AA and BB, CC waiting; leadership refused, then AA released."""
    switch = Switch()
    service.leadership = switch
    aa = await take(service, request("AA"))
    await take(service, request("BB"))
    cc = asyncio.ensure_future(service.acquire(request("CC", wait=60)))
    await until(lambda: service.waiting == 1)
    switch.leads = False
    await service.release(aa.id, aa.token)
    return switch, cc


async def test_a_paused_leader_hands_a_freed_seat_to_no_waiter_until_it_grants_again(
    service: SeatService, clock: FakeClock
) -> None:
    """A release while leadership is refused frees the seat, but the waiter is not served
    (nothing is granted without a proven lease); once leadership holds again the reaper's
    pass hands it over."""
    switch, cc = await released_while_paused(service)
    assert service.arbiter.in_use == 1
    assert not cc.done() and service.waiting == 1
    await service.reap()
    assert not cc.done()
    switch.leads = True
    await service.reap()
    assert (await asyncio.wait_for(cc, 5)).session.holder.user_code == "CC"
    assert service.arbiter.in_use == 2


async def test_a_session_granted_after_the_pause_is_not_pardoned(
    service: SeatService, clock: FakeClock
) -> None:
    """Leadership refused for 100 s: a seat granted once it holds again, before the reaper
    sees the pause end, expires on its own deadline, not 100 s later."""
    switch = Switch()
    service.leadership = switch
    switch.leads = False
    assert await service.reap() == []
    clock.advance(100)
    switch.leads = True
    bb = await take(service, request("BB"))
    deadline = service.arbiter.get(bb.id).expires_at
    assert await service.reap() == []
    assert service.arbiter.get(bb.id).expires_at == deadline


async def test_a_pause_no_reaper_tick_saw_still_hands_the_freed_seat_to_the_waiter(
    service: SeatService, clock: FakeClock
) -> None:
    """A release during a pause shorter than a reaper tick: the waiter is served at the
    next tick, not left waiting while a newcomer could take the free seat."""
    switch, cc = await released_while_paused(service)
    switch.leads = True
    assert not cc.done()
    await service.reap()
    assert (await asyncio.wait_for(cc, 5)).session.holder.user_code == "CC"


async def test_a_session_renewed_between_two_pauses_is_pardoned_the_second(
    service: SeatService, clock: FakeClock
) -> None:
    """Pause A (seen by the reaper), a resume it did not see in which AA renews, pause B,
    then the resume it sees: AA's deadline moves by the time since its renewal, so pause B
    cannot expire it."""
    switch = Switch()
    service.leadership = switch
    s = await take(service, request("AA"))
    _, stream = service.attach(s.id, s.token)
    switch.leads = False
    assert await service.reap() == []
    clock.advance(10)
    switch.leads = True
    service.ping(stream, 1)
    renewed = service.arbiter.get(s.id).expires_at
    clock.advance(1)
    switch.leads = False
    clock.advance(20)
    switch.leads = True
    assert await service.reap() == []
    assert service.arbiter.get(s.id).expires_at == renewed + 21
