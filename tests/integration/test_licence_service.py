"""Licences through the service: journaled, pushed to workstations, enforced. Real LMDB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seatd.arbiter import Arbiter
from seatd.entitlement import Status
from seatd.errors import LicenceRefusesGrant, LicenceRejected, SeatsExhausted, StorageFailed
from seatd.licence.book import LicenceBook
from seatd.licence.rules import LicenceConfig
from seatd.licence.watch import LicenceWatch
from seatd.model import Actor
from seatd.service import AcquireRequest, LicenceNotice, SeatService
from seatd.store import LmdbStore, StoreConfig
from tests.fakes import FakeClock
from tests.integration.conftest import TERMS, stop_service, until
from tests.integration.test_service import FailingStore, GatedStore
from tests.licences import BASE_ID, VENDOR, signed, trusted

OWNER = Actor("admin", "owner")


def request(user: str) -> AcquireRequest:
    return AcquireRequest(
        user_code=user,
        user_name=user,
        hostname="PC",
        client_version="1",
        idempotency_key=f"k-{user}",
        ip="10.0.0.1",
    )


async def licensed(tmp_path: Path, clock: FakeClock, store: LmdbStore | None = None) -> SeatService:
    store = store or LmdbStore(StoreConfig(tmp_path))
    snap = store.load()
    book = LicenceBook(
        base_id=BASE_ID,
        config=LicenceConfig(),
        trusted=trusted(VENDOR),
        clock=clock,
        text=snap.licence_text,
        active=snap.active_seats,
        last_seen=snap.last_seen,
        next_text=snap.next_licence_text,
        transferred=snap.transferred,
        lineage=snap.lineage,
    )
    service = SeatService(
        arbiter=Arbiter(TERMS), store=store, clock=clock, entitlement=book, book=book
    )
    service.arbiter.restore(snap.sessions, snap.next_id, service.now(), snap.endings)
    return service


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=datetime(2026, 6, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
async def service(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SeatService]:
    s = await licensed(tmp_path, clock)
    yield s
    stop_service(s)
    s.store.close()


async def test_no_licence_serves_without_cap(service: SeatService) -> None:
    """The free licence grants as many seats as asked."""
    for i in range(20):
        await service.acquire(request(f"U{i}"))
    assert service.arbiter.in_use == 20


async def test_import_caps_at_once_and_tells_the_workstations(service: SeatService) -> None:
    """Importing a 2-seat licence caps the next grant and pushes LicenceChanged to streams."""
    a = (await service.acquire(request("AA"))).session
    _, stream = service.attach(a.id, a.token)
    view = await service.import_licence(signed(), source="import", actor=OWNER)
    assert (view.status, view.seat_cap) == (Status.VALID, 2)
    notice = stream.outbox.get_nowait()
    assert isinstance(notice, LicenceNotice) and notice.licence.seat_cap == 2
    await service.acquire(request("BB"))
    with pytest.raises(SeatsExhausted):
        await service.acquire(request("CC"))
    kinds = [e["kind"] for e in service.store.journal_entries()]
    assert "licence_installed" in kinds
    assert [h["serial"] for h in service.store.licence_history()] == ["L-TEST-1"]


async def test_refused_import_keeps_the_licence_in_force(service: SeatService) -> None:
    """A tampered or foreign licence is refused; the previous one stays, nothing journaled."""
    await service.import_licence(signed(), source="import", actor=OWNER)
    before = service.store.journal_entries()
    tampered = signed().replace("\n", "\nX", 1)
    for text in (tampered, signed(base_id="11111111111111111", serial="L-OTHER")):
        with pytest.raises(LicenceRejected):
            await service.import_licence(text, source="import", actor=OWNER)
    assert service.entitlement.view().serial == "L-TEST-1"
    assert service.store.journal_entries() == before


async def test_an_older_licence_with_more_seats_is_refused(service: SeatService) -> None:
    """A 10-seat licence issued before the 3-seat one in force is refused; 3 seats stay."""
    await service.import_licence(
        signed(serial="L-NEW", seats=3, issued_at=datetime(2026, 3, 1, tzinfo=UTC)),
        source="import",
        actor=OWNER,
    )
    older = signed(serial="L-OLD", seats=10, issued_at=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(LicenceRejected, match="cannot be rolled back"):
        await service.import_licence(older, source="import", actor=OWNER)
    assert (service.entitlement.view().serial, service.entitlement.seat_cap()) == ("L-NEW", 3)


async def test_clearing_and_restarting_do_not_let_an_older_licence_back(
    tmp_path: Path, clock: FakeClock
) -> None:
    """After a clear and a restart, a licence older than the newest one ever had is refused."""
    s = await licensed(tmp_path, clock)
    newer = signed(serial="L-NEW", seats=3, issued_at=datetime(2026, 3, 1, tzinfo=UTC))
    await s.import_licence(newer, source="import", actor=OWNER)
    await s.clear_licence(actor=OWNER)
    stop_service(s)
    s.store.close()
    again = await licensed(tmp_path, clock)
    older = signed(serial="L-OLD", seats=10, issued_at=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(LicenceRejected, match="cannot be rolled back"):
        await again.import_licence(older, source="import", actor=OWNER)
    await again.import_licence(newer, source="import", actor=OWNER)
    stop_service(again)
    again.store.close()


async def test_lowering_active_seats_evicts_no_one(service: SeatService) -> None:
    """Active seats lowered to 1 with 2 live: both stay, a third is refused until one leaves."""
    await service.import_licence(signed(), source="import", actor=OWNER)
    a = (await service.acquire(request("AA"))).session
    await service.acquire(request("BB"))
    view = await service.set_active_seats(1, actor=OWNER)
    assert view.seat_cap == 1 and service.arbiter.in_use == 2
    with pytest.raises(SeatsExhausted):
        await service.acquire(request("CC"))
    await service.release(a.id, a.token)
    with pytest.raises(SeatsExhausted):
        await service.acquire(request("CC"))


async def test_a_lowered_cap_refuses_grants_decided_before_its_commit(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Grants decided while the command lowering the cap is still committing use the new cap."""
    store = GatedStore(StoreConfig(tmp_path))
    store.gate.set()
    service = await licensed(tmp_path, clock, store)
    await service.import_licence(signed(seats=10), source="import", actor=OWNER)
    store.gate.clear()
    store.entered.clear()
    lowering = asyncio.create_task(service.set_active_seats(2, actor=OWNER))
    await until(store.entered.is_set)
    grants = [asyncio.create_task(service.acquire(request(f"U{i}"))) for i in range(4)]
    await asyncio.sleep(0)
    store.gate.set()
    outcomes = await asyncio.gather(lowering, *grants, return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, SeatsExhausted)]
    assert (len(refused), service.arbiter.in_use, len(store.load().sessions)) == (2, 2, 2)
    stop_service(service)
    store.close()


async def test_a_failed_cap_change_is_forgotten(tmp_path: Path, clock: FakeClock) -> None:
    """A cap change whose commit fails leaves the stored cap in force."""
    store = FailingStore(StoreConfig(tmp_path))
    service = await licensed(tmp_path, clock, store)
    await service.import_licence(signed(seats=10), source="import", actor=OWNER)
    store.fail = True
    with pytest.raises(StorageFailed):
        await service.set_active_seats(2, actor=OWNER)
    store.fail = False
    assert service.entitlement.seat_cap() == 10
    stop_service(service)
    store.close()


async def test_after_the_grace_no_new_grants_but_sessions_go_on(
    service: SeatService, clock: FakeClock
) -> None:
    """Past the renewal date and 14 days of grace: new grants refused, live sessions renew."""
    await service.import_licence(signed(), source="import", actor=OWNER)
    a = (await service.acquire(request("AA"))).session
    clock.advance((datetime(2027, 1, 10, tzinfo=UTC) - clock.wall()).total_seconds())
    assert service.entitlement.view().status is Status.GRACE
    service.arbiter.renew(a.id, a.token, service.now())
    await service.acquire(request("BB"))
    clock.advance(6 * 86400)
    with pytest.raises(LicenceRefusesGrant, match="grace is over"):
        await service.acquire(request("CC"))
    service.arbiter.renew(a.id, a.token, service.now())
    assert service.arbiter.in_use == 2


async def test_clear_falls_back_to_free(service: SeatService) -> None:
    """Clearing the licence returns to the free Standard licence and is in the history."""
    await service.import_licence(signed(), source="import", actor=OWNER)
    view = await service.clear_licence(actor=OWNER)
    assert (view.status, view.seat_cap) == (Status.FREE, None)
    assert [h["source"] for h in service.store.licence_history()] == ["import", "clear"]


async def test_licence_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    """After a restart the imported licence and the active seats are in force again."""
    s = await licensed(tmp_path, clock)
    await s.import_licence(signed(), source="import", actor=OWNER)
    await s.set_active_seats(1, actor=OWNER)
    stop_service(s)
    s.store.close()
    again = await licensed(tmp_path, clock)
    assert (again.entitlement.view().serial, again.entitlement.seat_cap()) == ("L-TEST-1", 1)
    stop_service(again)
    again.store.close()


async def test_watch_journals_a_clock_set_back(service: SeatService, clock: FakeClock) -> None:
    """A tick that finds the wall clock set back journals it once and keeps the seats."""
    assert service.book is not None
    watch = LicenceWatch(service, service.book, 60)
    await service.acquire(request("AA"))
    await watch.tick()
    clock.advance(60)
    clock.set_wall_back(3 * 86400)
    await watch.tick()
    clock.advance(60)
    await watch.tick()
    rollbacks = [e for e in service.store.journal_entries() if e["kind"] == "clock_rollback"]
    assert len(rollbacks) == 1 and rollbacks[0]["behind_seconds"] > 3 * 86400 - 1
    assert service.arbiter.in_use == 1


async def test_a_clock_set_ahead_is_journaled_and_expires_nothing(
    tmp_path: Path, clock: FakeClock
) -> None:
    """400 days ahead mid-run: journaled once, the licence stays valid, and after the clock is
    corrected and the daemon restarted nothing of the jump remains."""
    s = await licensed(tmp_path, clock)
    await s.import_licence(signed(), source="import", actor=OWNER)
    assert s.book is not None
    watch = LicenceWatch(s, s.book, 60)
    await watch.tick()
    clock.advance(60)
    clock.set_wall_ahead(400 * 86400)
    await watch.tick()
    clock.advance(60)
    await watch.tick()
    assert s.entitlement.view().status is Status.VALID
    jumps = [e for e in s.store.journal_entries() if e["kind"] == "clock_jump"]
    assert len(jumps) == 1 and jumps[0]["ahead_seconds"] > 400 * 86400 - 120
    clock.set_wall_back(400 * 86400)
    await watch.tick()
    stop_service(s)
    s.store.close()
    again = await licensed(tmp_path, clock)
    assert again.book is not None
    await LicenceWatch(again, again.book, 60).tick()
    assert again.entitlement.view().status is Status.VALID
    assert not again.book.time.rolled_back
    stop_service(again)
    again.store.close()


async def test_watch_announces_entering_the_grace(service: SeatService, clock: FakeClock) -> None:
    """When the renewal date passes, every stream is told the licence is in grace."""
    await service.import_licence(signed(), source="import", actor=OWNER)
    a = (await service.acquire(request("AA"))).session
    _, stream = service.attach(a.id, a.token)
    assert service.book is not None
    watch = LicenceWatch(service, service.book, 60)
    clock.advance((datetime(2027, 1, 2, tzinfo=UTC) - clock.wall()).total_seconds())
    service.arbiter.renew(a.id, a.token, service.now())
    await watch.tick()
    notice = stream.outbox.get_nowait()
    assert isinstance(notice, LicenceNotice)
    assert (notice.licence.status, notice.licence.grace_days_left) == (Status.GRACE, 12)
