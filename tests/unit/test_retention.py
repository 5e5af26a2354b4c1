"""Which journal entries retention removes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from seatd.retention import PRUNE_CHUNK, JournalConfig, chunks, prune_up_to

NOW = datetime(2026, 6, 1, tzinfo=UTC)
LINKS = [(seq, NOW - timedelta(days=10 - seq)) for seq in range(1, 11)]  # days -9 .. 0
OFF = JournalConfig(retention_days=0, max_entries=0)


def test_retention_is_on_by_default() -> None:
    """The defaults bound the journal by age and by count."""
    config = JournalConfig()
    assert config.retention_days > 0 and config.max_entries > 0
    old = [(seq, NOW - timedelta(days=1000)) for seq in range(1, 11)]
    assert prune_up_to(1, 10, old, NOW, config) == 9


def test_nothing_is_pruned_within_the_defaults() -> None:
    """A young, small journal is kept whole."""
    assert prune_up_to(1, 10, LINKS, NOW, JournalConfig()) is None


def test_prune_by_age() -> None:
    """Keeping 3 days removes the entries older than that, and only those."""
    assert prune_up_to(1, 10, LINKS, NOW, JournalConfig(retention_days=3, max_entries=0)) == 6


def test_prune_by_count() -> None:
    """Keeping 4 entries removes all but the newest 4."""
    assert prune_up_to(1, 10, LINKS, NOW, JournalConfig(retention_days=0, max_entries=4)) == 6


def test_the_newest_entry_is_never_pruned() -> None:
    """Even when every entry is too old, the last one stays: the chain goes on from it."""
    config = JournalConfig(retention_days=1, max_entries=0)
    assert prune_up_to(1, 10, LINKS, NOW + timedelta(days=100), config) == 9


def test_a_store_short_of_space_prunes_the_oldest_quarter() -> None:
    """Short of space, the oldest quarter goes even when retention would keep it."""
    assert prune_up_to(1, 10, LINKS, NOW, OFF, short_of_space=True) == 3


def test_the_age_scan_stops_at_the_first_young_entry() -> None:
    """Retention reads entries only as far as they are too old, not the whole journal."""
    read: list[int] = []

    def oldest() -> object:
        for seq, at in LINKS:
            read.append(seq)
            yield seq, at

    prune_up_to(1, 10, oldest(), NOW, JournalConfig(retention_days=3))  # type: ignore[arg-type]
    assert read == [1, 2, 3, 4, 5, 6, 7]


def test_a_large_prune_is_cut_into_bounded_transactions() -> None:
    """No prune transaction removes more than PRUNE_CHUNK entries."""
    ends = chunks(1, 2 * PRUNE_CHUNK + 5)
    assert ends == [PRUNE_CHUNK, 2 * PRUNE_CHUNK, 2 * PRUNE_CHUNK + 5]
    assert chunks(7, 9) == [9]
