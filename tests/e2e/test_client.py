"""The workstation library end to end, the blocking and asyncio APIs on the same scenarios."""

from __future__ import annotations

import asyncio
import getpass
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from seatclient import (
    AcquireCancelled,
    AsyncSeatClient,
    DaemonUnavailable,
    EvictedEvent,
    SeatClient,
    SeatEvent,
    SeatsExhausted,
    SeatState,
    StateChanged,
    TakeoverDenied,
)
from seatclient.v1 import seat_pb2, seat_pb2_grpc

from tests.e2e.conftest import Daemon

pytestmark = pytest.mark.e2e


class Held:
    """A seat, whichever API holds it, with every event it reported."""

    def __init__(self, seat: Any, events: list[SeatEvent], release: Callable[[], Any]) -> None:
        self.seat = seat
        self.events = events
        self._release = release

    @property
    def session_id(self) -> int:
        return int(self.seat.session_id)

    @property
    def state(self) -> SeatState:
        return self.seat.state  # type: ignore[no-any-return]

    async def release(self) -> None:
        await self._release()


class Api:
    """The blocking API (through threads) and the asyncio API, behind one async shape."""

    def __init__(self, kind: str, target: str) -> None:
        self.kind = kind
        self.client: Any = (SeatClient if kind == "blocking" else AsyncSeatClient)(target)

    async def acquire(self, **kw: Any) -> Held:
        events: list[SeatEvent] = []
        kw.setdefault("on_event", events.append)
        if self.kind == "blocking":
            seat = await asyncio.to_thread(lambda: self.client.acquire(**kw))
            return Held(seat, events, lambda: asyncio.to_thread(seat.release))
        seat = await self.client.acquire(**kw)
        return Held(seat, events, seat.release)

    async def close(self) -> None:
        result = self.client.close()
        if asyncio.iscoroutine(result):
            await result


@pytest.fixture(params=["blocking", "asyncio"])
async def api_for(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Callable[[Daemon], Api]]:
    made: list[Api] = []

    def make(daemon: Daemon) -> Api:
        made.append(Api(request.param, daemon.target))
        return made[-1]

    yield make
    for api in made:
        await api.close()


async def until(predicate: Callable[[], bool], within: float, what: str) -> None:
    """Poll `predicate` in a worker thread: one that runs seatctl takes seconds on a busy
    machine, and the asyncio client's keepalives (TTL 2 s here) must not wait for it."""
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


def states(held: Held) -> list[SeatState]:
    return [e.new for e in held.events if isinstance(e, StateChanged)]


async def test_daemon_restart_is_jeopardy_then_active_on_the_same_session(
    make_daemon: Callable[..., Daemon], api_for: Callable[[Daemon], Api]
) -> None:
    """Daemon SIGKILLed and restarted under a held seat: JEOPARDY, then ACTIVE on the same
    session id, and the application sees no exception."""
    # A restart grace that outlasts a slow restart on a busy machine (FAST's is 2 s).
    daemon = make_daemon("--dev-seats", "1", "--restart-grace", "30")
    api = api_for(daemon)
    held = await api.acquire(user_code="AA")
    await asyncio.to_thread(daemon.kill9)
    await until(lambda: held.state is SeatState.JEOPARDY, 5, "jeopardy")
    await asyncio.to_thread(daemon.start)
    await until(lambda: held.state is SeatState.ACTIVE, 30, "active again")
    assert states(held) == [SeatState.JEOPARDY, SeatState.ACTIVE]
    listed = await asyncio.to_thread(daemon.sessions)
    assert [s["id"] for s in listed["sessions"]] == [held.session_id]
    await held.release()
    assert held.state is SeatState.RELEASED


async def test_waiting_client_gets_the_seat_within_a_second_of_a_release(
    make_daemon: Callable[..., Daemon], api_for: Callable[[Daemon], Api]
) -> None:
    """`acquire(wait=...)` returns within 1 s of another workstation releasing, no polling."""
    daemon = make_daemon("--dev-seats", "1")
    api = api_for(daemon)
    holder = await api.acquire(user_code="AA")
    positions: list[int] = []
    waiting = asyncio.ensure_future(
        api.acquire(user_code="BB", wait=30, on_queued=positions.append)
    )
    await until(lambda: positions == [1], 5, "queued at position 1")
    released_at = time.monotonic()
    await holder.release()
    got = await asyncio.wait_for(waiting, 5)
    assert time.monotonic() - released_at < 1.0
    assert got.state is SeatState.ACTIVE
    await got.release()


async def test_two_waiters_are_served_in_order(
    make_daemon: Callable[..., Daemon], api_for: Callable[[Daemon], Api]
) -> None:
    """Two waiters get the seat in the order they queued."""
    daemon = make_daemon("--dev-seats", "1")
    api = api_for(daemon)
    holder = await api.acquire(user_code="AA")
    positions: list[int] = []
    first = asyncio.ensure_future(api.acquire(user_code="W1", wait=30, on_queued=positions.append))
    await until(lambda: positions == [1], 5, "first waiter queued")
    second = asyncio.ensure_future(api.acquire(user_code="W2", wait=30, on_queued=positions.append))
    await until(lambda: positions == [1, 2], 5, "second waiter queued")
    await holder.release()
    w1 = await asyncio.wait_for(first, 5)
    await asyncio.sleep(0.2)
    assert not second.done()
    await w1.release()
    w2 = await asyncio.wait_for(second, 5)
    listed = await asyncio.to_thread(daemon.sessions)
    assert [s["user_code"] for s in listed["sessions"]] == ["W2"]
    await w2.release()


async def test_wait_that_runs_out_is_seats_exhausted_with_the_sessions(
    make_daemon: Callable[..., Daemon], api_for: Callable[[Daemon], Api]
) -> None:
    """A wait with no seat freeing ends in SeatsExhausted listing who holds the seats."""
    daemon = make_daemon("--dev-seats", "1")
    api = api_for(daemon)
    holder = await api.acquire(user_code="AA")
    # Long enough that the daemon's refusal gets the client's full margin (0.5 s) to arrive
    # before the call's deadline, even on a loaded machine.
    with pytest.raises(SeatsExhausted) as refused:
        await api.acquire(user_code="BB", wait=2.0)
    assert refused.value.queue_position == 1
    assert [s.user_code for s in refused.value.sessions] == ["AA"]
    await holder.release()


async def test_eviction_event_reaches_the_application(
    make_daemon: Callable[..., Daemon], api_for: Callable[[Daemon], Api]
) -> None:
    """An admin eviction arrives as an Evicted event with reason and actor; state EVICTED."""
    daemon = make_daemon()
    api = api_for(daemon)
    held = await api.acquire(user_code="AA")
    await until(lambda: daemon.sessions()["sessions"][0]["attached"], 5, "attached")
    out = await asyncio.to_thread(daemon.ctl, "evict", str(held.session_id), "--reason", "audit")
    assert out.returncode == 0
    await until(lambda: held.state is SeatState.EVICTED, 2, "evicted")
    evicted = [e for e in held.events if isinstance(e, EvictedEvent)]
    assert [(e.reason, e.by) for e in evicted] == [("audit", getpass.getuser())]


@pytest.mark.parametrize(
    ("policy", "same_user", "allowed"),
    [
        ("anyone", False, True),
        ("same-user", True, True),
        ("same-user", False, False),
        ("admin-only", True, False),
    ],
)
async def test_takeover_follows_the_policy(
    make_daemon: Callable[..., Daemon],
    api_for: Callable[[Daemon], Api],
    policy: str,
    same_user: bool,
    allowed: bool,
) -> None:
    """Taking a seat over at capacity works where the policy allows it and is refused with
    PERMISSION_DENIED where it does not; the victim hears who took it and why."""
    daemon = make_daemon("--dev-seats", "1", "--takeover", policy)
    api = api_for(daemon)
    victim = await api.acquire(user_code="AA")
    taker = "AA" if same_user else "BB"
    if not allowed:
        with pytest.raises(TakeoverDenied, match=policy):
            await api.acquire(user_code=taker, evict_session=victim.session_id, reason="mine")
        assert victim.state is SeatState.ACTIVE
        await victim.release()
        return
    took = await api.acquire(user_code=taker, evict_session=victim.session_id, reason="urgent")
    await until(lambda: victim.state is SeatState.EVICTED, 2, "victim evicted")
    (evicted,) = [e for e in victim.events if isinstance(e, EvictedEvent)]
    assert evicted.reason == "urgent"
    assert evicted.by.startswith(f"{taker}@")
    await took.release()


async def test_superseded_seat_stops_without_fighting_or_releasing(
    make_daemon: Callable[..., Daemon], api_for: Callable[[Daemon], Api]
) -> None:
    """Another stream attaching the same session makes the seat SUPERSEDED: it does not
    reattach (the other stream stays attached) and its release leaves the seat alone."""
    daemon = make_daemon()
    api = api_for(daemon)
    held = await api.acquire(user_code="AA")
    await until(lambda: daemon.sessions()["sessions"][0]["attached"], 5, "attached")
    async with grpc.aio.insecure_channel(daemon.target) as channel:
        other = seat_pb2_grpc.SeatServiceStub(channel).Keepalive()
        token = held.seat._core.token  # the other instance holds the same session and token
        await other.write(
            seat_pb2.KeepaliveRequest(
                attach=seat_pb2.Attach(session_id=held.session_id, lease_token=token)
            )
        )
        assert (await other.read()).HasField("attached")
        await until(lambda: held.state is SeatState.SUPERSEDED, 2, "superseded")
        # A second of pings (longer than any reattach delay the seat would take): each is
        # answered, so the other stream was never superseded back.
        for seq in range(1, 6):
            await other.write(seat_pb2.KeepaliveRequest(ping=seat_pb2.Ping(seq=seq)))
            assert (await other.read()).pong.seq == seq
            await asyncio.sleep(0.25)
        await held.release()
        # The other stream keeps pinging while seatctl lists (seconds on a busy machine, and
        # the TTL here is 2 s): the seat is held by a live stream all along.
        listing = asyncio.ensure_future(asyncio.to_thread(daemon.sessions))
        seq = 5
        while not listing.done():
            seq += 1
            await other.write(seat_pb2.KeepaliveRequest(ping=seat_pb2.Ping(seq=seq)))
            assert (await other.read()).pong.seq == seq
            await asyncio.wait({listing}, timeout=0.25)
        listed = listing.result()
        assert [(s["id"], s["attached"]) for s in listed["sessions"]] == [(held.session_id, True)]
        other.cancel()


async def test_waiting_client_hears_its_position_move_up(
    make_daemon: Callable[..., Daemon], api_for: Callable[[Daemon], Api]
) -> None:
    """`on_queued` hears each new position: the waiter ahead giving up moves it from 2 to 1."""
    daemon = make_daemon("--dev-seats", "1")
    api = api_for(daemon)
    holder = await api.acquire(user_code="AA")
    ahead: list[int] = []
    behind: list[int] = []
    first = asyncio.ensure_future(api.acquire(user_code="W1", wait=1, on_queued=ahead.append))
    await until(lambda: ahead == [1], 5, "first waiter queued")
    second = asyncio.ensure_future(api.acquire(user_code="W2", wait=30, on_queued=behind.append))
    await until(lambda: behind == [2], 5, "second waiter queued")
    with pytest.raises(SeatsExhausted):
        await asyncio.wait_for(first, 5)
    await until(lambda: behind == [2, 1], 2, "second waiter moved up")
    await holder.release()
    got = await asyncio.wait_for(second, 5)
    await got.release()


async def test_wait_bounds_the_acquire_when_the_daemon_dies_during_it(
    make_daemon: Callable[..., Daemon], api_for: Callable[[Daemon], Api]
) -> None:
    """Daemon SIGKILLed during `acquire(wait=12)`: DaemonUnavailable by about 12 s (it was
    19.8 s), and the application heard that the daemon was unreachable meanwhile."""
    daemon = make_daemon("--dev-seats", "1")
    api = api_for(daemon)
    await api.acquire(user_code="AA")
    positions: list[int] = []
    unreachable: list[DaemonUnavailable] = []
    started = time.monotonic()
    waiting = asyncio.ensure_future(
        api.acquire(
            user_code="BB",
            wait=12,
            on_queued=positions.append,
            on_unreachable=unreachable.append,
        )
    )
    await until(lambda: positions == [1], 5, "queued at position 1")
    await asyncio.to_thread(daemon.kill9)
    with pytest.raises(DaemonUnavailable) as gone:
        await asyncio.wait_for(waiting, 30)
    elapsed = time.monotonic() - started
    # The bound is the wait itself; the slack is only for a loaded machine's scheduling.
    assert elapsed < 12 + 2.0, f"raised after {elapsed:.1f} s"
    assert unreachable and unreachable[0].target == daemon.target
    assert gone.value.target == daemon.target


async def test_cancel_ends_a_queued_acquire_and_frees_its_place(
    make_daemon: Callable[..., Daemon], api_for: Callable[[Daemon], Api]
) -> None:
    """Cancelling a queued acquire raises AcquireCancelled; the seat freed next goes to a
    later caller, not to the cancelled one."""
    daemon = make_daemon("--dev-seats", "1")
    api = api_for(daemon)
    holder = await api.acquire(user_code="AA")
    positions: list[int] = []
    cancel = threading.Event() if api.kind == "blocking" else asyncio.Event()
    waiting = asyncio.ensure_future(
        api.acquire(user_code="BB", wait=30, cancel=cancel, on_queued=positions.append)
    )
    await until(lambda: positions == [1], 5, "queued at position 1")
    cancel.set()
    with pytest.raises(AcquireCancelled):
        await asyncio.wait_for(waiting, 5)
    await holder.release()
    later = await api.acquire(user_code="CC")
    listed = await asyncio.to_thread(daemon.sessions)
    assert [s["user_code"] for s in listed["sessions"]] == ["CC"]
    await later.release()
