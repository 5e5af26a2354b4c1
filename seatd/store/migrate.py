"""`seatd migrate`: a site's whole seat table from LMDB into etcd, and back.

Every record is copied as it is stored (sessions with their ids and lease tokens, the
journal with its chain and head, licence, its history and lineage, tokens, kept endings,
meta with the base id and installation secret), so the site is the same site on the other
backend and `seatctl journal verify` proves the chain there. The source is read in one read
transaction (LMDB, with the state directory locked: no daemon may run on it) or at one etcd
revision. The target must be empty: an etcd site prefix holding any key, or a state
directory seatd has used, is refused. In etcd the records go in as several transactions
(etcd bounds one); the meta record that makes the prefix a seat table goes last, so an
interrupted copy is refused by the daemon and by a second migrate, never served.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import lmdb
from aetcd.rpc import rpc_pb2

from seatd import filemodes
from seatd.errors import StateError
from seatd.store.base import TABLES, Store, Table
from seatd.store.etcd import (
    EtcdConfig,
    EtcdStore,
    Keys,
    Link,
    absent,
    empty_prefix,
    put_op,
    range_end,
)
from seatd.store.lmdb import DEFAULT_MAP_SIZE, LmdbStore, StoreConfig, used

Row = tuple[Table, bytes, bytes]
# The record whose presence makes a prefix (or a data file) a seat table: written last.
_LAST: tuple[Table, bytes] = ("meta", b"base_id")


@dataclass(frozen=True, slots=True)
class Moved:
    records: int
    sessions: int
    journal_entries: int
    base_id: str

    def summary(self) -> str:
        return (
            f"base id {self.base_id}: {self.records} records, {self.sessions} sessions, "
            f"{self.journal_entries} journal entries"
        )


def _moved(rows: list[Row]) -> Moved:
    base_id = next((v.decode() for t, k, v in rows if (t, k) == _LAST), "")
    return Moved(
        records=len(rows),
        sessions=sum(t == "sessions" for t, _, _ in rows),
        journal_entries=sum(t == "journal" for t, _, _ in rows),
        base_id=base_id,
    )


def _checked(store: Store) -> None:
    """The copy's chain verifies from its checkpoint to its recorded head."""
    entries, broken, _ = store.verify_journal()
    if broken is not None:
        raise StateError(
            f"the copied journal does not verify at seq {broken} of {entries}: the copy is "
            "not usable; the source is unchanged"
        )


def to_etcd(state_dir: Path, config: EtcdConfig) -> Moved:
    """Copy the LMDB seat table in `state_dir` into the empty site prefix of `config`."""
    source = LmdbStore(StoreConfig(state_dir), create=False)
    try:
        rows = list(source.records())
    finally:
        source.close()
    keys = Keys(config.prefix)
    link = Link(config)
    try:
        # Any key at all under the prefix: a site there, or the debris of one.
        held = link.range(
            rpc_pb2.RangeRequest(
                key=config.prefix, range_end=range_end(config.prefix), count_only=True
            )
        ).count
        if held:
            raise StateError(
                f"etcd site prefix {config.prefix.decode()} already holds {held} keys: seatd "
                "migrates only into an empty prefix. Pick another --site, or remove that "
                f"one on purpose (`etcdctl del --prefix {config.prefix.decode()}`) and retry"
            )
        ordered = [r for r in rows if r[:2] != _LAST] + [r for r in rows if r[:2] == _LAST]
        per_txn = config.max_txn_ops
        for first in range(0, len(ordered), per_txn):
            batch = ordered[first : first + per_txn]
            # The first batch into an empty prefix, the next ones while it holds no table.
            guard = empty_prefix(config.prefix) if first == 0 else absent(keys.of(*_LAST))
            done = link.txn(
                rpc_pb2.TxnRequest(
                    compare=[guard], success=[put_op(keys.of(t, k), v) for t, k, v in batch]
                )
            )
            if not done.succeeded:
                raise StateError(
                    f"something else wrote under {config.prefix.decode()} during the "
                    "migration: stop it, remove the prefix on purpose and migrate again"
                )
    finally:
        link.close()
    target = EtcdStore(config, create=False)
    try:
        _checked(target)
    finally:
        target.close()
    return _moved(rows)


def to_lmdb(config: EtcdConfig, state_dir: Path) -> Moved:
    """Copy the etcd site of `config` into a new LMDB seat table in `state_dir`."""
    if used(state_dir):
        raise StateError(
            f"{state_dir} is not empty: seatd migrates only into an unused state directory "
            "(it never replaces a seat table); give a new one"
        )
    source = EtcdStore(config, create=False)
    try:
        rows = list(source.records())
    finally:
        source.close()
    lock_fd = LmdbStore._lock(state_dir)
    try:
        env_dir = filemodes.private_dir(state_dir / "seatd.lmdb")
        data = write_lmdb(rows, env_dir)
        filemodes.hand_over([env_dir, data, state_dir / "seatd.lock"], state_dir)
    finally:
        os.close(lock_fd)
    target = LmdbStore(StoreConfig(state_dir))
    try:
        _checked(target)
    finally:
        target.close()
    return _moved(rows)


def write_lmdb(rows: Iterable[Row], directory: Path) -> Path:
    """The records as a new LMDB environment (the LMDB store's named databases) in
    `directory`; its data file."""
    # No lock file: the caller owns `directory` (a locked state directory, or a temporary).
    env = lmdb.open(
        str(directory),
        map_size=DEFAULT_MAP_SIZE,
        max_dbs=16,
        lock=False,
        mode=filemodes.PRIVATE_FILE,
    )
    try:
        with env.begin(write=True) as txn:
            dbs = {t: env.open_db(t.encode(), txn=txn) for t in TABLES}
            for table, key, value in rows:
                txn.put(key, value, db=dbs[table])
    finally:
        env.close()
    return directory / "data.mdb"
