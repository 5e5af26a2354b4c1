"""Seat tables made for tests: filled through the store, then damaged by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import lmdb

from seatd.model import DaemonEvent
from seatd.store import LmdbStore, StoreConfig

WHEN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PAGE = 4096


def filled(state_dir: Path, entries: int) -> str:
    """A closed seat table holding `entries` journal entries; returns its base id."""
    store = LmdbStore(StoreConfig(state_dir))
    for start in range(0, entries, 500):
        store.commit(
            [
                DaemonEvent("note", WHEN, f"entry {n}")
                for n in range(start, min(entries, start + 500))
            ]
        )
    base_id = store.load().base_id
    store.close()
    return base_id


def raw_env(state_dir: Path) -> lmdb.Environment:
    """The table opened behind the store's back, to damage it as a disk or a person would."""
    return lmdb.open(str(state_dir / "seatd.lmdb"), max_dbs=8)


def zero_pages_holding(data: Path, marker: bytes) -> None:
    """Overwrite with zeros every page in which `marker` appears (a page LMDB will read)."""
    content = bytearray(data.read_bytes())
    found = content.find(marker)
    assert found >= 0, marker
    while found >= 0:
        page = found // PAGE
        content[page * PAGE : (page + 1) * PAGE] = bytes(PAGE)
        found = content.find(marker, (page + 1) * PAGE)
    data.write_bytes(bytes(content))
