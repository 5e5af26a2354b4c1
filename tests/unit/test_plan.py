"""What a commit writes (seatd.store.plan), on an in-memory transaction: pure, no backend."""

from __future__ import annotations

import bisect
import json
from datetime import UTC, datetime

from seatd import journal, records
from seatd.model import (
    Ended,
    Ending,
    EndKind,
    Granted,
    Holder,
    JournalPruned,
    Session,
    StoreProbe,
    WallSeen,
)
from seatd.store import plan
from seatd.store.base import TABLES, Table

WHEN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
START = (0, journal.GENESIS)


class DictTx:
    """Each table a dict kept in key order; reads see the writes."""

    def __init__(self) -> None:
        self.tables: dict[Table, dict[bytes, bytes]] = {t: {} for t in TABLES}

    def get(self, table: Table, key: bytes) -> bytes | None:
        return self.tables[table].get(key)

    def put(self, table: Table, key: bytes, value: bytes) -> None:
        rows = self.tables[table]
        rows[key] = value
        self.tables[table] = dict(sorted(rows.items()))

    def append(self, table: Table, key: bytes, value: bytes) -> None:
        assert all(k < key for k in self.tables[table]), "append before the last key"
        self.put(table, key, value)

    def delete(self, table: Table, key: bytes) -> None:
        self.tables[table].pop(key, None)

    def first(self, table: Table) -> tuple[bytes, bytes] | None:
        return next(iter(self.tables[table].items()), None)

    def last_key(self, table: Table) -> bytes | None:
        return next(reversed(self.tables[table]), None)

    def count(self, table: Table) -> int:
        return len(self.tables[table])

    def delete_through(self, table: Table, key: bytes) -> tuple[int, bytes, bytes]:
        keys = list(self.tables[table])
        gone = keys[: bisect.bisect_right(keys, key)]
        last = (gone[-1], self.tables[table][gone[-1]]) if gone else (b"", b"")
        for k in gone:
            del self.tables[table][k]
        return len(gone), *last


def session(sid: int) -> Session:
    return Session(
        sid, Holder("AA", "AA name", "PC-1", "10.0.0.1", "15"), f"k{sid}", f"t{sid}", WHEN,
        WHEN, 0.0, 35.0,
    )


def test_a_grant_and_its_release_in_one_commit_leave_only_their_entries() -> None:
    """Granted then released in one group commit: no session row, two chained entries."""
    tx = DictTx()
    released = Ending(session(1), EndKind.RELEASED, "released", "AA", WHEN)
    head = plan.apply(tx, [Granted(session(1)), Ended(released)], START)
    assert tx.tables["sessions"] == {}
    assert [json.loads(v)["kind"] for v in tx.tables["journal"].values()] == [
        "granted",
        "released",
    ]
    assert head[0] == 2
    assert records.decode_chain_point("meta", b"", tx.tables["meta"][b"journal_head"]) == head


def test_events_that_are_not_journaled_leave_the_head_where_it_was() -> None:
    """A wall-time record and a probe write no journal entry and no head."""
    tx = DictTx()
    assert plan.apply(tx, [WallSeen(WHEN), StoreProbe(WHEN)], START) == START
    assert tx.tables["journal"] == {}
    assert b"journal_head" not in tx.tables["meta"]


def test_the_probe_leaves_nothing_behind() -> None:
    """The write probe's record is taken and given back in the same transaction."""
    tx = DictTx()
    plan.apply(tx, [StoreProbe(WHEN)], START)
    assert b"probe" not in tx.tables["meta"]


def test_pruning_anchors_the_chain_at_the_last_entry_it_removed() -> None:
    """The checkpoint is the last pruned entry's seq and hash; the prune's own entry says so."""
    tx = DictTx()
    head = plan.apply(tx, [Granted(session(i)) for i in range(1, 4)], START)
    third = json.loads(tx.tables["journal"][records.seq_key(3)])
    plan.apply(tx, [JournalPruned(up_to_seq=3, at=WHEN)], head)
    assert json.loads(tx.tables["meta"][b"journal_checkpoint"]) == {
        "seq": 3,
        "hash": third["hash"],
    }
    [pruned] = [json.loads(v) for v in tx.tables["journal"].values()]
    assert (pruned["seq"], pruned["pruned"], pruned["anchor_hash"]) == (4, 3, third["hash"])
