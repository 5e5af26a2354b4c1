"""A held seat's public answers against the real server: release's flag, a gone takeover."""

from __future__ import annotations

import pytest
from seatclient import AsyncSeatClient, SeatsExhausted, TakeoverTargetGone

from tests.integration.conftest import Running


async def test_release_says_whether_it_freed_the_seat(running: Running) -> None:
    """release() is True when it freed the seat, False when the seat had ended already."""
    async with AsyncSeatClient(f"127.0.0.1:{running.port}") as client:
        seat = await client.acquire(user_code="AA")
        assert await seat.release() is True
        assert await seat.release() is False
        evicted = await client.acquire(user_code="BB")
        await running.service.evict(evicted.session_id, reason="audit", by="admin")
        await evicted.wait(5)
        assert await evicted.release() is False
        assert evicted.ending is not None and evicted.ending.code == "SESSION_EVICTED"


async def test_takeover_of_a_session_that_logged_out_is_target_gone(running: Running) -> None:
    """The session chosen in the dialog logged out meanwhile: TakeoverTargetGone, no seat."""
    async with AsyncSeatClient(f"127.0.0.1:{running.port}") as client:
        held = [await client.acquire(user_code=u) for u in ("AA", "BB")]
        with pytest.raises(SeatsExhausted) as full:
            await client.acquire(user_code="CC")
        chosen = full.value.sessions[0].id
        await held[0].release()
        await client.acquire(user_code="DD")
        with pytest.raises(TakeoverTargetGone) as gone:
            await client.acquire(user_code="CC", evict_session=chosen, reason="need it")
        assert gone.value.session_id == chosen
        assert "need it" not in str(gone.value)
