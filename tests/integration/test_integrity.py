"""The check before serving: a damaged or missing seat table is refused, never replaced."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seatd import journal, records
from seatd.errors import StoreDamaged
from seatd.model import DaemonEvent
from seatd.store import SCHEMA_VERSION, LmdbStore, StoreConfig
from tests.tables import filled, raw_env, zero_pages_holding

WHEN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_zeroed_journal_page_is_refused_before_serving(tmp_path: Path) -> None:
    """A zeroed page, which makes LMDB abort the process on its first read, is refused at
    open with what is damaged and the way out."""
    filled(tmp_path, 3000)
    zero_pages_holding(tmp_path / "seatd.lmdb" / "data.mdb", b'"entry 1000"')
    with pytest.raises(StoreDamaged, match=r"(?s)database 'journal'.*seatd restore BACKUP"):
        LmdbStore(StoreConfig(tmp_path))


@pytest.mark.parametrize(
    ("db", "key", "raw", "named"),
    [
        (
            "sessions",
            records.seq_key(3),
            b'{"id": 3, "user',
            "3 in database 'sessions' is not JSON",
        ),
        (
            "licence",
            b"active_seats",
            b"ten",
            "'active_seats' in database 'licence' is not a number",
        ),
        (
            "licence",
            b"transferred",
            b'{"to_base_id": "1"}',
            "'transferred' in database 'licence' has no field 'at'",
        ),
        ("tokens", b"ops", b'{"name": "ops"}', "'ops' in database 'tokens' has no field 'role'"),
    ],
)
def test_a_record_that_does_not_decode_is_refused_naming_it(
    tmp_path: Path, db: str, key: bytes, raw: bytes, named: str
) -> None:
    """Bad JSON, a missing field or a bad number in a state record: refused at open, with
    the record named (database and key)."""
    filled(tmp_path, 1)
    env = raw_env(tmp_path)
    with env.begin(write=True) as txn:
        txn.put(key, raw, db=env.open_db(db.encode(), txn=txn))
    env.close()
    with pytest.raises(StoreDamaged, match=f"record {named}"):
        LmdbStore(StoreConfig(tmp_path))


def test_a_table_without_its_base_id_is_refused_not_given_a_new_one(tmp_path: Path) -> None:
    """A meta record gone missing is damage: the site never silently gets a new base id."""
    filled(tmp_path, 1)
    env = raw_env(tmp_path)
    with env.begin(write=True) as txn:
        txn.delete(b"base_id", db=env.open_db(b"meta", txn=txn))
    env.close()
    with pytest.raises(StoreDamaged, match="record 'base_id' in database 'meta' is missing"):
        LmdbStore(StoreConfig(tmp_path))


def test_a_removed_journal_tail_is_refused_at_open(tmp_path: Path) -> None:
    """The last entries deleted: the head recorded in meta no longer matches, so it is refused."""
    filled(tmp_path, 6)
    env = raw_env(tmp_path)
    with env.begin(write=True) as txn:
        for seq in (5, 6):
            txn.delete(records.seq_key(seq), db=env.open_db(b"journal", txn=txn))
    env.close()
    with pytest.raises(StoreDamaged, match="journal ends at seq 4 but its recorded head is seq 6"):
        LmdbStore(StoreConfig(tmp_path))


TAIL_CUTTER = """
import sys, lmdb
env = lmdb.open(sys.argv[1], max_dbs=8)
with env.begin(write=True) as txn:
    journal = env.open_db(b"journal", txn=txn)
    for seq in (5, 6):
        txn.delete(seq.to_bytes(8, "big"), db=journal)
"""


def test_journal_verify_catches_a_tail_removed_behind_the_store(tmp_path: Path) -> None:
    """Entries deleted from the end by another process while the store is open: verify names
    the first one missing, where the chain alone still verifies."""
    store = LmdbStore(StoreConfig(tmp_path))
    store.commit([DaemonEvent("note", WHEN, f"entry {n}") for n in range(6)])
    cut = [sys.executable, "-c", TAIL_CUTTER, str(tmp_path / "seatd.lmdb")]
    subprocess.run(cut, check=True, timeout=30)
    assert journal.first_broken(store.journal_links()) is None
    assert store.verify_journal() == (4, 5, 4)
    store.close()


def test_the_head_is_recorded_with_every_commit(tmp_path: Path) -> None:
    """Meta's head is the last entry's seq and hash after each commit, and after a reopen."""
    store = LmdbStore(StoreConfig(tmp_path))
    store.commit([DaemonEvent("note", WHEN, "one"), DaemonEvent("note", WHEN, "two")])
    last = store.journal_entries()[-1]
    assert store.recorded_head() == (2, last["hash"])
    store.close()
    reopened = LmdbStore(StoreConfig(tmp_path))
    assert reopened.recorded_head() == (2, last["hash"])
    reopened.close()


def test_a_schema_1_table_is_upgraded_with_its_head_recorded(tmp_path: Path) -> None:
    """A table written before the head was kept opens, and records its last entry as head."""
    filled(tmp_path, 3)
    env = raw_env(tmp_path)
    with env.begin(write=True) as txn:
        meta = env.open_db(b"meta", txn=txn)
        txn.delete(b"journal_head", db=meta)
        txn.put(b"schema_version", b"1", db=meta)
    env.close()
    store = LmdbStore(StoreConfig(tmp_path))
    assert store.recorded_head() == (3, store.journal_entries()[-1]["hash"])
    assert store.verify_journal() == (3, None, 3)
    store.close()
    env = raw_env(tmp_path)
    with env.begin(db=env.open_db(b"meta")) as txn:
        assert txn.get(b"schema_version") == str(SCHEMA_VERSION).encode()
    env.close()


@pytest.mark.parametrize("loss", ["data file deleted", "data file emptied", "table dir deleted"])
def test_a_used_state_directory_without_a_table_is_refused(tmp_path: Path, loss: str) -> None:
    """seatd's files are there but the table is not: refused, and no fresh table is made."""
    filled(tmp_path, 1)
    table = tmp_path / "seatd.lmdb"
    if loss == "data file deleted":
        (table / "data.mdb").unlink()
    elif loss == "data file emptied":
        (table / "data.mdb").write_bytes(b"")
    else:
        for f in table.iterdir():
            f.unlink()
        table.rmdir()
    with pytest.raises(
        StoreDamaged, match=r"holds no seat table.*seatd restore BACKUP.*seatd init"
    ):
        LmdbStore(StoreConfig(tmp_path))
    assert not (table / "data.mdb").exists() or (table / "data.mdb").stat().st_size == 0


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_a_first_start_creates_a_table(tmp_path: Path, where: str) -> None:
    """No state directory, or an empty one (systemd's StateDirectory=): a new site is made."""
    state = tmp_path / "state"
    if where == "empty":
        state.mkdir()
    store = LmdbStore(StoreConfig(state))
    assert store.created and len(store.load().base_id) == 17
    store.close()


def test_init_creates_a_table_where_one_was_lost(tmp_path: Path) -> None:
    """`seatd init` (create=True) starts a new site on purpose where the table is gone."""
    old = filled(tmp_path, 1)
    (tmp_path / "seatd.lmdb" / "data.mdb").unlink()
    store = LmdbStore(StoreConfig(tmp_path), create=True)
    assert store.created and store.load().base_id != old
    store.close()


def test_init_never_replaces_an_existing_table(tmp_path: Path) -> None:
    """create=True on a table that is there opens it as it is."""
    old = filled(tmp_path, 2)
    store = LmdbStore(StoreConfig(tmp_path), create=True)
    assert not store.created and store.load().base_id == old
    store.close()
