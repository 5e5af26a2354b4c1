"""Which journal entries retention removes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from seatd.retention import JournalConfig, prune_up_to

NOW = datetime(2026, 6, 1, tzinfo=UTC)
LINKS = [(seq, NOW - timedelta(days=10 - seq)) for seq in range(1, 11)]  # days -9 .. 0


def test_nothing_is_pruned_by_default() -> None:
    """With no retention set, everything is kept."""
    assert prune_up_to(LINKS, NOW, JournalConfig()) is None


def test_prune_by_age() -> None:
    """Keeping 3 days removes the entries older than that, and only those."""
    assert prune_up_to(LINKS, NOW, JournalConfig(retention_days=3)) == 6


def test_prune_by_count() -> None:
    """Keeping 4 entries removes all but the newest 4."""
    assert prune_up_to(LINKS, NOW, JournalConfig(max_entries=4)) == 6


def test_the_newest_entry_is_never_pruned() -> None:
    """Even when every entry is too old, the last one stays: the chain goes on from it."""
    assert prune_up_to(LINKS, NOW + timedelta(days=100), JournalConfig(retention_days=1)) == 9
