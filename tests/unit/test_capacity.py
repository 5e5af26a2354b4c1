"""How full the store is and what that allows (pure)."""

from __future__ import annotations

from seatd.capacity import ENDING_BYTES, MIN_MAP, Capacity, Level, initial_map

MIB = 1 << 20


def room(used: float, map_size: int = 100 * MIB, ceiling: int = 100 * MIB) -> Capacity:
    return Capacity(int(used * MIB), map_size, ceiling, reserve=0.1)


def test_levels_follow_the_used_share_of_the_ceiling() -> None:
    """Roomy below 80 %, filling from 80 %, full from the ceiling minus the reserve."""
    assert [room(u).level for u in (79, 80, 89.9, 90)] == [
        Level.ROOMY,
        Level.FILLING,
        Level.FILLING,
        Level.FULL,
    ]


def test_grants_stop_at_the_reserve() -> None:
    """Grants are allowed until the reserve is reached, and only until then."""
    assert room(89).grants_ok and not room(90).grants_ok


def test_the_map_doubles_once_more_than_half_is_used() -> None:
    """More than half used doubles the map, never past the ceiling."""
    assert room(10, map_size=32 * MIB).grow_to() is None
    assert room(16, map_size=32 * MIB).grow_to() == 64 * MIB
    assert room(60, map_size=64 * MIB).grow_to() == 100 * MIB
    assert room(90, map_size=100 * MIB).grow_to() is None


def test_the_map_opens_at_twice_the_data_within_bounds() -> None:
    """A fresh store opens small; an existing one with room to double; never past the ceiling."""
    assert initial_map(0, 100 * MIB) == MIN_MAP
    assert initial_map(3 * MIB, 100 * MIB) == 8 * MIB
    assert initial_map(80 * MIB, 100 * MIB) == 100 * MIB


def test_each_live_session_holds_room_for_its_ending() -> None:
    """Grants stop early enough that every live session's ending still fits."""
    sessions = int(3 * MIB / ENDING_BYTES)
    assert room(87).grants_ok
    assert not Capacity(87 * MIB, 100 * MIB, 100 * MIB, 0.1, sessions=sessions).grants_ok


def test_pages_pinned_by_a_reader_count_towards_growth() -> None:
    """A data file written past half the map grows it, even if little of it is live."""
    written = Capacity(10 * MIB, 32 * MIB, 100 * MIB, 0.1, high_water=20 * MIB)
    assert written.grow_to() == 64 * MIB
