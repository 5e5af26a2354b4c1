"""Decision -> durable commit -> acknowledgement, on a real LMDB, with a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from seatd.errors import (
    InvalidArgument,
    LimitExceeded,
    SeatsExhausted,
    SessionEnded,
    StorageFailed,
)
from seatd.limits import PING_BURST
from seatd.model import Actor, Event, Session
from seatd.reaper import Reaper, ReaperConfig
from seatd.service import OUTBOX_LIMIT, AcquireRequest, EvictedNotice, SeatService
from seatd.store import LmdbStore, StoreConfig
from seatd.waitqueue import QueueConfig
from tests.fakes import FakeClock
from tests.integration.conftest import start_service, stop_service, until


def request(user: str = "AA", key: str | None = None, **kw: object) -> AcquireRequest:
    return AcquireRequest(
        user_code=user,
        user_name=f"{user} name",
        hostname="PC-1",
        client_version="15",
        idempotency_key=key or f"key-{user}",
        **{"ip": "10.0.0.1", **kw},
    )  # type: ignore[arg-type]


class GatedStore(LmdbStore):
    """The real store, whose commits wait for the test to open a gate."""

    def __init__(self, config: StoreConfig) -> None:
        super().__init__(config)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []

    def commit(self, events: Sequence[Event]) -> None:
        self.entered.set()
        self.gate.wait(5)
        self.batches.append(len(events))
        super().commit(events)


async def take(service: SeatService, req: AcquireRequest) -> Session:
    return (await service.acquire(req)).session


async def test_acquire_is_answered_only_after_its_commit(tmp_path: Path, clock: FakeClock) -> None:
    """While the commit holding a grant has not finished, the caller has no answer."""
    store = GatedStore(StoreConfig(tmp_path))
    service = start_service(store, clock)
    pending = asyncio.create_task(service.acquire(request()))
    await until(store.entered.is_set)
    await asyncio.sleep(0.05)
    assert not pending.done()
    store.gate.set()
    session = (await pending).session
    assert [s.id for s in store.load().sessions] == [session.id]
    assert store.journal_entries()[-1]["kind"] == "granted"
    stop_service(service)
    store.close()


async def test_decisions_waiting_together_share_one_transaction(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Grants that arrive while a commit runs go together into the next transaction."""
    store = GatedStore(StoreConfig(tmp_path))
    service = start_service(store, clock, cap=100)
    first = asyncio.create_task(service.acquire(request("U0")))
    await until(store.entered.is_set)
    rest = [asyncio.create_task(service.acquire(request(f"U{i}"))) for i in range(1, 21)]
    await asyncio.sleep(0.05)
    store.gate.set()
    await asyncio.gather(first, *rest)
    assert store.batches == [1, 20]
    assert len(store.load().sessions) == 21
    stop_service(service)
    store.close()


async def test_retry_waits_for_the_original_commit(tmp_path: Path, clock: FakeClock) -> None:
    """An idempotent retry is not answered before the grant it returns is durable."""
    store = GatedStore(StoreConfig(tmp_path))
    service = start_service(store, clock)
    original = asyncio.create_task(service.acquire(request(key="same")))
    await until(store.entered.is_set)
    retry = asyncio.create_task(service.acquire(request(key="same")))
    await asyncio.sleep(0.05)
    assert not retry.done()
    store.gate.set()
    assert (await original).session.id == (await retry).session.id
    stop_service(service)
    store.close()


class FailingStore(LmdbStore):
    fail = False

    def commit(self, events: Sequence[Event]) -> None:
        if self.fail:
            raise StorageFailed("the disk is full")
        super().commit(events)


async def test_failed_commit_refuses_and_restores_the_table(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A failed commit answers StorageFailed, and the table is back to what is stored."""
    store = FailingStore(StoreConfig(tmp_path))
    service = start_service(store, clock, cap=2)
    kept = await take(service, request("AA"))
    store.fail = True
    with pytest.raises(StorageFailed, match="disk is full"):
        await service.acquire(request("BB"))
    with pytest.raises(StorageFailed):
        await service.evict(kept.id, reason="r", by="admin")
    assert [s.id for s in service.arbiter.sessions()] == [kept.id]
    store.fail = False
    again = await take(service, request("BB"))
    assert [s.id for s in store.load().sessions] == [kept.id, again.id]
    stop_service(service)
    store.close()


async def test_refusal_at_capacity_lists_the_sessions(service: SeatService) -> None:
    """The third acquire on a cap of two is refused with both sessions listed."""
    await service.acquire(request("AA"))
    await service.acquire(request("BB"))
    with pytest.raises(SeatsExhausted) as refused:
        await service.acquire(request("CC"))
    assert [s.holder.user_code for s in refused.value.sessions] == ["AA", "BB"]


async def test_eviction_is_pushed_to_the_stream_before_it_closes(service: SeatService) -> None:
    """The evicted session's stream gets the eviction notice, then ends."""
    s = await take(service, request())
    _, stream = service.attach(s.id, s.token)
    await service.evict(s.id, reason="lunch", by="admin")
    notice = stream.outbox.get_nowait()
    assert isinstance(notice, EvictedNotice) and notice.ending.reason == "lunch"
    assert stream.outbox.get_nowait() is None
    with pytest.raises(SessionEnded):
        service.attach(s.id, s.token)


async def test_reaper_tick_frees_a_silent_session(service: SeatService, clock: FakeClock) -> None:
    """A tick after TTL + grace frees the seat and journals the expiry; before, nothing."""
    s = await take(service, request())
    reaper = Reaper(service, ReaperConfig())
    clock.advance(34)
    assert await reaper.tick() == []
    clock.advance(1)
    assert [e.session.id for e in await reaper.tick()] == [s.id]
    assert service.store.load().sessions == []
    assert service.store.journal_entries()[-1]["kind"] == "expired"


async def test_dropped_stream_frees_the_seat_after_the_reattach_grace(
    service: SeatService, clock: FakeClock
) -> None:
    """A stream that drops (a killed workstation) frees the seat 10 s later."""
    s = await take(service, request())
    _, stream = service.attach(s.id, s.token)
    service.detach(stream)
    reaper = Reaper(service, ReaperConfig())
    clock.advance(9.9)
    assert await reaper.tick() == []
    clock.advance(0.1)
    assert len(await reaper.tick()) == 1


async def test_restart_restores_sessions_with_their_tokens(
    tmp_path: Path, clock: FakeClock
) -> None:
    """After a restart, stored sessions reattach with their tokens and keep their ids."""
    store = LmdbStore(StoreConfig(tmp_path))
    service = start_service(store, clock)
    a = await take(service, request("AA"))
    b = await take(service, request("BB"))
    stop_service(service)
    store.close()

    store = LmdbStore(StoreConfig(tmp_path))
    restarted = start_service(store, FakeClock(mono=3.0))
    assert restarted.attach(a.id, a.token)[0].id == a.id
    assert restarted.attach(b.id, b.token)[0].id == b.id
    with pytest.raises(SeatsExhausted):
        await restarted.acquire(request("CC"))
    stop_service(restarted)
    store.close()


async def test_an_eviction_reason_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    """A workstation that comes back after a restart learns it was evicted, and why."""
    store = LmdbStore(StoreConfig(tmp_path))
    first = start_service(store, clock)
    seat = await take(first, request())
    await first.evict(seat.id, reason="audit", by="local-admin-socket", claimed="alice")
    stop_service(first)
    store.close()
    store = LmdbStore(StoreConfig(tmp_path))
    again = start_service(store, clock)
    with pytest.raises(SessionEnded) as ended:
        again.attach(seat.id, seat.token)
    assert (ended.value.ending.reason, ended.value.ending.who) == ("audit", "alice")
    stop_service(again)
    store.close()


async def test_drain_refuses_grants_and_tells_streams(service: SeatService) -> None:
    """Draining pushes a reattach-later notice to every stream and refuses new grants."""
    s = await take(service, request())
    _, stream = service.attach(s.id, s.token)
    await service.drain()
    assert type(stream.outbox.get_nowait()).__name__ == "DrainingNotice"
    from seatd.errors import Draining

    with pytest.raises(Draining):
        await service.acquire(request("BB"))


async def test_every_seat_change_is_a_log_event(service: SeatService, clock: FakeClock) -> None:
    """Grant, refusal, eviction, release and expiry each log their own named event: the
    routine pair (grant, release) at debug, what an admin may act on at info."""
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        a = await take(service, request("AA"))
        b = await take(service, request("BB"))
        with pytest.raises(SeatsExhausted):
            await service.acquire(request("CC"))
        await service.evict(a.id, reason="lunch", by="admin")
        await service.release(b.id, b.token)
        c = await take(service, request("DD"))
        clock.advance(35)
        await service.reap()
    events = [(e["event"], e.get("session_id"), e["log_level"]) for e in logs]
    assert events == [
        ("seat.granted", a.id, "debug"),
        ("seat.granted", b.id, "debug"),
        ("seat.refused", None, "info"),
        ("seat.evicted", a.id, "info"),
        ("seat.released", b.id, "debug"),
        ("seat.granted", c.id, "debug"),
        ("seat.expired", c.id, "info"),
    ]
    assert logs[3]["reason"] == "lunch" and logs[3]["by"] == "admin"


async def test_releases_are_counted_for_the_metrics(service: SeatService) -> None:
    """Each seat given back counts once in seatd_releases; a repeated release does not."""
    from seatd.metrics import SeatCollector

    a = await take(service, request("AA"))
    assert await service.release(a.id, a.token) is True
    assert await service.release(a.id, a.token) is False
    family = next(f for f in SeatCollector(service, None).collect() if f.name == "seatd_releases")
    assert [s.value for s in family.samples if s.name == "seatd_releases_total"] == [1]


async def test_waiter_gets_the_seat_when_one_frees(service: SeatService) -> None:
    """A waiting acquire is granted as soon as a seat is released, with its queue position."""
    a = await take(service, request("AA"))
    await take(service, request("BB"))
    positions: list[int] = []

    async def queued(position: int) -> None:
        positions.append(position)

    waiting = asyncio.create_task(service.acquire(request("CC", wait=30), on_queued=queued))
    await until(lambda: service.waiting == 1)
    assert positions == [1]
    await service.release(a.id, a.token)
    acquired = await asyncio.wait_for(waiting, 1)
    assert acquired.session.holder.user_code == "CC"
    assert acquired.queue_position == 1


async def test_waiters_are_served_first_come_first_served(service: SeatService) -> None:
    """Two waiters get the next two free seats in the order they arrived."""
    a = await take(service, request("AA"))
    b = await take(service, request("BB"))
    first = asyncio.create_task(service.acquire(request("W1", wait=30)))
    await until(lambda: service.waiting == 1)
    second = asyncio.create_task(service.acquire(request("W2", wait=30)))
    await until(lambda: service.waiting == 2)
    await service.evict(b.id, reason="r", by="admin")
    assert (await asyncio.wait_for(first, 1)).session.holder.user_code == "W1"
    assert not second.done()
    await service.release(a.id, a.token)
    assert (await asyncio.wait_for(second, 1)).session.holder.user_code == "W2"


async def test_newcomer_cannot_jump_the_queue(service: SeatService) -> None:
    """When a seat frees with someone waiting, a newcomer without wait is still refused."""
    a = await take(service, request("AA"))
    await take(service, request("BB"))
    waiting = asyncio.create_task(service.acquire(request("W1", wait=30)))
    await until(lambda: service.waiting == 1)
    releasing = asyncio.create_task(service.release(a.id, a.token))
    await asyncio.sleep(0)
    with pytest.raises(SeatsExhausted):
        await service.acquire(request("NEW"))
    await releasing
    assert (await waiting).session.holder.user_code == "W1"


async def test_wait_that_times_out_says_its_position(
    service: SeatService, clock: FakeClock
) -> None:
    """A wait that ends without a seat is refused with the position it had reached."""
    await take(service, request("AA"))
    await take(service, request("BB"))
    ahead = asyncio.create_task(service.acquire(request("W1", wait=30)))
    await until(lambda: service.waiting == 1)
    behind = asyncio.create_task(service.acquire(request("W2", wait=0.05)))
    await until(lambda: service.waiting == 2)
    clock.advance(0.05)
    assert service.expire_waiters() == 1
    with pytest.raises(SeatsExhausted) as refused:
        await behind
    assert refused.value.queue_position == 2
    assert service.waiting == 1
    ahead.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ahead
    assert service.waiting == 0


async def test_wait_out_of_bounds_is_invalid(service: SeatService) -> None:
    """A negative or over-long wait is refused as an invalid argument."""
    from seatd.errors import InvalidArgument

    for wait in (-1, 10_000):
        with pytest.raises(InvalidArgument, match="wait"):
            await service.acquire(request("AA", wait=wait))


async def test_reattach_and_restart_reattach_are_journaled(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A first attach is not journaled; a reattach after a drop is "reattached"; the first
    attach after a restart is "renewed_after_restart"."""
    store = LmdbStore(StoreConfig(tmp_path))
    service = start_service(store, clock)
    s = await take(service, request("AA"))
    _, stream = service.attach(s.id, s.token)
    service.detach(stream)
    service.attach(s.id, s.token)
    await service.committer.submit(())
    stop_service(service)
    store.close()
    store = LmdbStore(StoreConfig(tmp_path))
    restarted = start_service(store, FakeClock(mono=5.0))
    restarted.attach(s.id, s.token)
    await restarted.committer.submit(())
    kinds = [e["kind"] for e in store.journal_entries()]
    assert kinds == ["granted", "reattached", "renewed_after_restart"]
    stop_service(restarted)
    store.close()


async def test_two_tokens_with_one_name_cannot_both_be_created(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Two concurrent CreateToken calls with one name: one token, the other call refused."""
    store = GatedStore(StoreConfig(tmp_path))
    service = start_service(store, clock)
    owner = Actor("admin", "owner")
    first = asyncio.create_task(service.create_token("ci", "viewer", actor=owner))
    await until(store.entered.is_set)
    second = asyncio.create_task(service.create_token("ci", "viewer", actor=owner))
    await asyncio.sleep(0)
    store.gate.set()
    outcomes = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(outcomes[0], str) and isinstance(outcomes[1], InvalidArgument)
    assert service.token_actor(outcomes[0]) == Actor("token:ci", "viewer")
    stop_service(service)
    store.close()


async def test_wait_queue_refuses_one_peer_beyond_its_share(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A host flooding waiting acquires is refused with QUEUE_FULL beyond its per-peer bound,
    while another address may still queue."""
    store = LmdbStore(StoreConfig(tmp_path))
    service = start_service(store, clock, cap=1)
    service.queue.reconfigure(QueueConfig(max_waiting=100, max_waiting_per_peer=3))
    await take(service, request("AA"))
    flood = [
        asyncio.create_task(service.acquire(request(f"F{i}", wait=30, ip="10.9.9.9")))
        for i in range(3)
    ]
    await until(lambda: service.waiting == 3)
    with pytest.raises(LimitExceeded) as refused:
        await service.acquire(request("F3", wait=30, ip="10.9.9.9"))
    assert refused.value.reason == "QUEUE_FULL"
    other = asyncio.create_task(service.acquire(request("OK", wait=30, ip="10.0.0.2")))
    await until(lambda: service.waiting == 4)
    for task in [*flood, other]:
        task.cancel()
    await asyncio.gather(*flood, other, return_exceptions=True)
    assert service.waiting == 0
    stop_service(service)


async def test_many_waits_run_out_together_in_one_pass(
    service: SeatService, clock: FakeClock
) -> None:
    """Waits that run out are answered by the clock in one pass, each with its position."""
    service.queue.reconfigure(QueueConfig(max_waiting=500, max_waiting_per_peer=0))
    await take(service, request("AA"))
    await take(service, request("BB"))
    waits = [asyncio.create_task(service.acquire(request(f"W{i}", wait=30))) for i in range(500)]
    await until(lambda: service.waiting == 500)
    clock.advance(29.9)
    assert service.expire_waiters() == 0
    clock.advance(0.1)
    assert service.expire_waiters() == 500
    refused = await asyncio.gather(*waits, return_exceptions=True)
    assert [getattr(r, "queue_position", None) for r in refused] == list(range(1, 501))
    assert service.waiting == 0


async def test_keepalive_ping_flood_abandons_the_stream(service: SeatService) -> None:
    """Pings far faster than the keepalive interval end the stream with PING_FLOOD; no pong
    is queued beyond the budget."""
    s = await take(service, request("AA"))
    _, stream = service.attach(s.id, s.token)
    for seq in range(100):
        service.ping(stream, seq)
    assert stream.abandoned
    assert stream.error is not None and stream.error.reason == "PING_FLOOD"
    assert stream.outbox.qsize() <= PING_BURST + 1


async def test_unread_keepalive_answers_are_bounded(service: SeatService, clock: FakeClock) -> None:
    """A workstation that pings at its rate but never reads its answers has its stream
    abandoned (KEEPALIVE_BACKLOG) once OUTBOX_LIMIT answers wait, never more."""
    s = await take(service, request("AA"))
    _, stream = service.attach(s.id, s.token)
    for seq in range(OUTBOX_LIMIT * 2):
        clock.advance(service.arbiter.terms.keepalive_interval)
        service.ping(stream, seq)
    assert stream.outbox.qsize() <= OUTBOX_LIMIT + 1
    assert stream.error is not None and stream.error.reason == "KEEPALIVE_BACKLOG"
