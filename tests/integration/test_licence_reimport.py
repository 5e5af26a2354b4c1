"""Importing the licence already in force again. Real LMDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seatd.service import SeatService
from tests.fakes import FakeClock
from tests.integration.conftest import stop_service
from tests.integration.test_licence_service import OWNER, licensed, request
from tests.licences import signed


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[SeatService]:
    s = await licensed(tmp_path, FakeClock(start=datetime(2026, 6, 1, 9, 0, tzinfo=UTC)))
    yield s
    stop_service(s)
    s.store.close()


async def test_reimporting_the_licence_in_force_changes_nothing(service: SeatService) -> None:
    """The same licence imported again adds no history line ("L-X replaced L-X"), no journal
    entry, keeps the active seats lowered since, and tells no workstation."""
    await service.import_licence(signed(), source="import", actor=OWNER)
    await service.set_active_seats(1, actor=OWNER)
    a = (await service.acquire(request("AA"))).session
    _, stream = service.attach(a.id, a.token)
    history, entries = service.store.licence_history(), service.store.journal_entries()
    view = await service.import_licence(signed(), source="import", actor=OWNER)
    assert (view.serial, view.seat_cap) == ("L-TEST-1", 1)
    assert service.store.licence_history() == history
    assert service.store.journal_entries() == entries
    assert stream.outbox.empty()


async def test_a_new_serial_is_still_installed_over_the_one_in_force(
    service: SeatService,
) -> None:
    """A different licence replaces the one in force, with its history line."""
    await service.import_licence(signed(), source="import", actor=OWNER)
    await service.import_licence(signed(serial="L-TEST-2", seats=3), source="import", actor=OWNER)
    last = service.store.licence_history()[-1]
    assert (last["serial"], last["previous_serial"]) == ("L-TEST-2", "L-TEST-1")
