"""The LMDB backend (the default): sessions, journal and meta, in one environment.

A seat change and its journal entry always commit in one write transaction (`commit`),
which only the writer thread of `seatd.committer` calls; the journal's head (sequence and
hash) is written to meta in that same transaction. Reads (`load`, `journal`) use read
transactions and may run on any thread. The store owns the state directory for the life of
the process through an exclusive lock file, so two daemons never share one seat table.

A seat table is created only on a first start: when the state directory does not exist or
is empty, or by `seatd init`. An existing one is opened only after `seatd.integrity` has
checked it; a directory seatd has used that holds no seat table is refused, never refilled.

The map starts small and the writer doubles it up to `StoreConfig.map_size` (the ceiling)
when more than half is used (`seatd.capacity`). LMDB allows `set_mapsize` only while no
transaction is open in the process, so every read runs inside `_ReadGate.reading` and the
writer remaps, between its own transactions, once the readers are out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import lmdb
import structlog

from seatd import capacity, filemodes, integrity, journal, records
from seatd.capacity import Capacity, Level
from seatd.errors import RESTORE_ADVICE, StateError, StorageFailed, StoreDamaged
from seatd.model import (
    Event,
)
from seatd.store import plan
from seatd.store.base import TABLES, Snapshot, Table, read_snapshot

SCHEMA_VERSION = records.SCHEMA_VERSION
DEFAULT_MAP_SIZE = 1 << 30
_U64 = records.U64
_key = records.seq_key
log = structlog.get_logger("seatd")
_PAGE = 4096
# How long the writer waits for readers to leave before a remap: a planned growth happens
# only at a moment without readers (it is due long before the map is full, and tried at
# every commit); a write that found the map full holds new readers back and waits.
_REMAP_PATIENCE = 0.0
_REMAP_PATIENCE_FULL = 10.0


@dataclass(frozen=True, slots=True)
class StoreConfig:
    state_dir: Path = Path("/var/lib/seatd")
    # The most the LMDB state may ever take, in bytes: the map grows up to it as needed.
    map_size: int = DEFAULT_MAP_SIZE
    # Share of map_size kept for releases, expiries, evictions and pruning: grants and
    # refusal records stop once the state passes map_size minus this reserve.
    reserve: float = 0.1


class _ReadGate:
    """Read transactions against a remap: readers wait while one is due, the remap waits
    (boundedly) for the readers already in."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._remapping = False

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._remapping)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    def remap(self, action: Callable[[], None], patience: float) -> bool:
        """Run `action` with no reader inside; False if they did not leave in time."""
        with self._cond:
            if not patience and self._readers:
                return False
            self._remapping = True
            try:
                if not self._cond.wait_for(lambda: self._readers == 0, patience):
                    return False
                action()
                return True
            finally:
                self._remapping = False
                self._cond.notify_all()


def restore(backup: Path, state_dir: Path, at: datetime, by: str) -> integrity.Report:
    """Replace the seat table in `state_dir` with `backup` (an LMDB data file), once the
    backup checks out. Refuses while a daemon holds the state directory; the table it
    replaces is kept beside it. The restored table says where it came from, which the
    daemon journals when it next starts."""
    report = integrity.check_backup(backup)
    lock_fd = LmdbStore._lock(state_dir)  # refuses while a daemon runs
    try:
        target = state_dir / "seatd.lmdb"
        kept = state_dir / f"seatd.lmdb.before-restore-{os.getpid()}"
        staged = state_dir / "seatd.lmdb.restoring"
        shutil.rmtree(staged, ignore_errors=True)
        filemodes.private_dir(staged)
        try:
            filemodes.copy_private(backup, staged / "data.mdb")
        except OSError as exc:
            raise StateError(f"cannot read the backup {backup}: {exc.strerror or exc}") from exc
        _mark_restored(
            staged,
            {
                "by": by,
                "backup": str(backup.resolve()),
                "sha256": _sha256(backup),
                "bytes": backup.stat().st_size,
                "restored_at": at.isoformat(),
                "backup_seq": report.head_seq,
                "replaced": str(kept) if target.exists() else "",
            },
        )
        # The lock file too: made here by root when the daemon never ran in this directory.
        filemodes.hand_over([staged, staged / "data.mdb", state_dir / "seatd.lock"], state_dir)
        if target.exists():
            target.rename(kept)
        staged.rename(target)
    finally:
        os.close(lock_fd)
    return report


def used(state_dir: Path) -> bool:
    """Whether seatd may have kept a seat table here. A first start finds no directory or an
    empty one (systemd's StateDirectory= creates it empty before the first start)."""
    try:
        return any(state_dir.iterdir())
    except FileNotFoundError:
        return False
    except OSError:
        return True  # not a directory, or unreadable: taking the lock says why


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _mark_restored(env_dir: Path, provenance: dict[str, Any]) -> None:
    """Write where the table in `env_dir` came from into its meta, with the time of the
    backup's last journal entry (the backup was taken at or after it)."""
    # No lock file: the state directory's lock keeps everyone else off this copy.
    env = lmdb.open(
        str(env_dir), map_size=DEFAULT_MAP_SIZE, max_dbs=8, lock=False, mode=filemodes.PRIVATE_FILE
    )
    try:
        with env.begin(write=True) as txn:
            cursor = txn.cursor(db=env.open_db(b"journal", txn=txn))
            last = json.loads(bytes(cursor.value())) if cursor.last() else {}
            record = provenance | {"backup_at": str(last.get("at", ""))}
            txn.put(b"restored", journal.canonical(record), db=env.open_db(b"meta", txn=txn))
    finally:
        env.close()


class LmdbStore:
    # Events per transaction, at most (a submission is never split): a bounded write fits in
    # the store's reserve, and its freed pages serve the next one.
    max_batch_events = 500

    def __init__(self, config: StoreConfig, *, create: bool = False) -> None:
        """Open the seat table in `config.state_dir` once `seatd.integrity` has checked it.

        A new table is created on a first start (no directory, or an empty one), or with
        `create` (`seatd init`) where there is none; otherwise a missing or empty data file,
        or a damaged table, raises StoreDamaged: never a fresh site in place of the old one.
        """
        self.path = config.state_dir
        first_start = not used(config.state_dir)
        self._lock_fd = self._lock(config.state_dir)
        self._ceiling = config.map_size - config.map_size % _PAGE
        self._reserve = config.reserve
        self._gate = _ReadGate()
        data = config.state_dir / "seatd.lmdb" / "data.mdb"
        try:
            self.created = not self._check_existing(create or first_start)
            # Made here, 0700: given only a file mode, LMDB would create it without search bit.
            env_dir = filemodes.private_dir(config.state_dir / "seatd.lmdb")
            self._env = lmdb.open(
                str(env_dir),
                map_size=capacity.initial_map(
                    data.stat().st_size if data.exists() else 0, self._ceiling
                ),
                max_dbs=16,
                mode=filemodes.PRIVATE_FILE,
            )
        except (lmdb.Error, OSError) as exc:
            os.close(self._lock_fd)
            raise StateError(f"cannot open the seat table in {config.state_dir}: {exc}") from exc
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._meta = self._env.open_db(b"meta")
        self._sessions = self._env.open_db(b"sessions")
        self._journal = self._env.open_db(b"journal")
        self._licence = self._env.open_db(b"licence")
        self._history = self._env.open_db(b"licence_history")
        self._tokens = self._env.open_db(b"tokens")
        # Recent endings keyed by the journal seq of their entry (so in commit order).
        self._endings = self._env.open_db(b"endings")
        self._main = self._env.open_db(None)
        self._psize = int(self._env.stat()["psize"])
        self._by_table: dict[Table, Any] = {
            "meta": self._meta,
            "sessions": self._sessions,
            "journal": self._journal,
            "licence": self._licence,
            "licence_history": self._history,
            "tokens": self._tokens,
            "endings": self._endings,
        }
        self._dbs = list(self._by_table.values())
        if self.created:
            self._create()
        else:
            self._upgrade()
        self._head = self.recorded_head()
        with self._env.begin() as txn:
            self.capacity = self._measure(txn)

    def _check_existing(self, may_create: bool) -> bool:
        """Whether a seat table is there to open (checked); False when one may be created."""
        data = self.path / "seatd.lmdb" / "data.mdb"
        size = data.stat().st_size if data.exists() else None
        if not size:
            if may_create:
                return False
            raise StoreDamaged(
                f"{self.path} has been used by seatd but holds no seat table ({data} is "
                f"{'empty' if size == 0 else 'missing'}); seatd does not start a new site in "
                f"its place (a new base id, no sessions, no journal): {RESTORE_ADVICE}. To "
                "start over as a new site on purpose, run `seatd init` first"
            )
        try:
            report = integrity.check(data.parent, live=True)
        except StoreDamaged as exc:
            raise StoreDamaged(
                f"the seat table in {self.path} is damaged: {exc}; {RESTORE_ADVICE}"
            ) from None
        log.info(
            "store.checked",
            state_dir=str(self.path),
            records=report.records,
            sessions=report.sessions,
            journal_entries=report.journal_entries,
            head_seq=report.head_seq,
        )
        return True

    @staticmethod
    def _lock(state_dir: Path) -> int:
        try:
            filemodes.private_dir(state_dir)
            fd = filemodes.open_private(state_dir / "seatd.lock")
        except OSError as exc:
            raise StateError(
                f"cannot use state directory {state_dir}: {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StateError(
                f"another seatd (pid {holder}) is using state directory {state_dir}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def _create(self) -> None:
        with self._env.begin(write=True, db=self._meta) as txn:
            # The customer database's "Num ID": 17 random digits, fixed for good.
            base_id = str(10**16 + secrets.randbelow(9 * 10**16))
            txn.put(b"base_id", base_id.encode())
            # Registered with the vendor's cloud at the first sync (trust on first use).
            txn.put(b"installation_secret", secrets.token_urlsafe(32).encode())
            txn.put(b"schema_version", str(SCHEMA_VERSION).encode())
            txn.put(b"next_session_id", b"1")
            txn.put(b"journal_head", records.encode_chain_point(0, journal.GENESIS))
        log.info("store.created", state_dir=str(self.path), base_id=base_id)

    def _upgrade(self) -> None:
        """Bring a checked table of an older schema to this one, in one transaction."""
        with self._env.begin(write=True, db=self._meta) as txn:
            found = records.decode_number(
                "meta", b"schema_version", txn.get(b"schema_version") or b""
            )
            if found == 1:
                if txn.get(b"installation_secret") is None:
                    txn.put(b"installation_secret", secrets.token_urlsafe(32).encode())
                # Schema 1 kept no head: the chain's last entry as found becomes it.
                cursor = txn.cursor(db=self._journal)
                if cursor.last():
                    entry = records.decode_entry(cursor.key(), cursor.value())
                    head = (int(entry["seq"]), str(entry["hash"]))
                else:
                    head = self._chain_point(txn, b"journal_checkpoint")
                txn.put(b"journal_head", records.encode_chain_point(*head))
                txn.put(b"schema_version", str(SCHEMA_VERSION).encode())
                log.info("store.upgraded", from_schema=1, to_schema=SCHEMA_VERSION)
                return
        if found != SCHEMA_VERSION:
            self.close()
            raise StateError(
                f"the seat table in {self.path} has schema version {found}, this seatd "
                f"reads version {SCHEMA_VERSION}: restore a backup made by a matching version"
            )

    def _chain_point(self, txn: lmdb.Transaction, key: bytes) -> tuple[int, str]:
        return integrity.chain_point(txn, self._meta, key)

    def recorded_head(self) -> tuple[int, str]:
        """The journal's head (seq, hash) as meta records it, written with every commit."""
        with self._gate.reading(), self._env.begin() as txn:
            return self._chain_point(txn, b"journal_head")

    # -- reads -----------------------------------------------------------------------------

    def backup(self, directory: Path) -> Path:
        """A consistent, compacted copy of the environment in `directory` (a read txn)."""
        with self._gate.reading():
            self._env.copy(str(directory), compact=True)
        return directory / "data.mdb"

    def load(self) -> Snapshot:
        """The state to serve. Raises DamagedRecord naming a record that does not decode."""
        with self._gate.reading(), self._env.begin() as txn:
            return read_snapshot(_Tx(txn, self._by_table))

    def records(self) -> Iterator[tuple[Table, bytes, bytes]]:
        """Every record, table by table, from one read transaction."""
        with self._gate.reading(), self._env.begin() as txn:
            read = _Tx(txn, self._by_table)
            for table in TABLES:
                for k, v in read.items(table):
                    yield table, k, v

    def licence_history(self) -> list[dict[str, Any]]:
        with self._gate.reading(), self._env.begin(db=self._history) as txn:
            return [records.decode_history(k, v) for k, v in txn.cursor()]

    def journal_links(self) -> Iterator[journal.Link]:
        with self._gate.reading(), self._env.begin(db=self._journal) as txn:
            for k, v in txn.cursor():
                yield journal.Link(_U64.unpack(k)[0], bytes(v))

    def journal_span(self) -> tuple[int, int]:
        """The first and last seq held (first > last when the journal is empty)."""
        with self._gate.reading(), self._env.begin(db=self._journal) as txn:
            cursor = txn.cursor()
            if not cursor.first():
                return 1, 0
            first = _U64.unpack(cursor.key())[0]
            cursor.last()
            return first, _U64.unpack(cursor.key())[0]

    def journal_times(self) -> Generator[tuple[int, datetime], None, None]:
        """(seq, at) from the oldest entry on, read lazily: close it when done."""
        with self._gate.reading(), self._env.begin(db=self._journal) as txn:
            for k, v in txn.cursor():
                at = str(json.loads(bytes(v))["at"]).replace("Z", "+00:00")
                yield _U64.unpack(k)[0], datetime.fromisoformat(at)

    def read_journal(
        self, after_seq: int, limit: int, keep: journal.Filter
    ) -> tuple[list[tuple[int, bytes, dict[str, Any]]], bool]:
        """Up to `limit` matching entries after `after_seq`, and whether more may follow."""
        found: list[tuple[int, bytes, dict[str, Any]]] = []
        with self._gate.reading(), self._env.begin(db=self._journal) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(_key(after_seq + 1)):
                return found, False
            for k, v in cursor:
                if len(found) == limit:
                    return found, True
                entry = records.decode_entry(k, v)
                if keep.matches(entry):
                    found.append((_U64.unpack(k)[0], bytes(v), entry))
        return found, False

    def verify_journal(self) -> tuple[int, int | None, int]:
        """Entries, the first seq the chain does not prove (None if intact), and the last seq
        (`integrity.verify_journal`: in a child process, which leaves this one's GIL alone)."""
        return integrity.verify_journal(self.path / "seatd.lmdb")

    def journal_entries(self) -> list[dict[str, Any]]:
        return [json.loads(link.raw) for link in self.journal_links()]

    # -- the one write path -----------------------------------------------------------------

    def commit(self, events: Sequence[Event]) -> None:
        """Persist seat changes and their journal entries in one transaction. A full map is
        grown (up to the ceiling) and the transaction tried again."""
        self._grow(_REMAP_PATIENCE)
        try:
            with self._env.begin(write=True) as txn:
                head = plan.apply(_Tx(txn, self._by_table), events, self._head)
                measured = self._measure(txn)
        except lmdb.MapFullError as exc:
            if self._grow(_REMAP_PATIENCE_FULL, full=True):
                return self.commit(events)
            raise StorageFailed(
                f"the seat table has reached its map size, store.map_size = {self._ceiling}: "
                + capacity.ADVICE
            ) from exc
        except (lmdb.Error, OSError) as exc:
            no_space = getattr(exc, "errno", None) == errno.ENOSPC or "space" in str(exc)
            raise StorageFailed(
                f"the disk is full: free disk space ({capacity.ADVICE})"
                if no_space
                else f"write failed: {exc}"
            ) from exc
        self._head = head
        self._settled(measured)

    # -- room --------------------------------------------------------------------------------

    def _measure(self, txn: lmdb.Transaction) -> Capacity:
        """What the databases take once `txn` commits (the writer's own txn: no gate)."""
        pages = 2  # LMDB's two meta pages
        for db in (*self._dbs, self._main):
            stat = txn.stat(db)
            pages += stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]
        info = self._env.info()
        return Capacity(
            used=pages * self._psize,
            map_size=info["map_size"],
            high_water=(info["last_pgno"] + 1) * self._psize,
            ceiling=self._ceiling,
            reserve=self._reserve,
            sessions=txn.stat(self._sessions)["entries"],
        )

    def _grow(self, patience: float, *, full: bool = False) -> bool:
        """Double the map (at most to the ceiling) when due, or when a write found it full."""
        now = self.capacity
        target = min(self._ceiling, now.map_size * 2) if full else now.grow_to()
        if target is None or target <= now.map_size:
            return False
        if not self._gate.remap(lambda: self._env.set_mapsize(target), patience):
            if full:
                log.warning("store.map_growth_postponed", reason="readers still open")
            return False
        self.capacity = dataclasses.replace(now, map_size=target)
        log.info("store.map_grown", map_size=target, ceiling=self._ceiling, used=now.used)
        return True

    def _settled(self, measured: Capacity) -> None:
        """Take the new measure; say so in the log when the store changes level."""
        before, self.capacity = self.capacity.level, measured
        after = measured.level
        if after == before:
            return
        fields = {"used_ratio": round(measured.ratio, 3), "map_size_ceiling": self._ceiling}
        if after is Level.FULL:
            log.error(
                "store.full",
                **fields,
                refused="grants and refusal records",
                still_committed="releases, expiries, evictions, pruning",
                action=capacity.ADVICE,
            )
        elif after is Level.FILLING and before is Level.ROOMY:
            log.warning("store.filling", **fields, action=capacity.ADVICE)
        elif after is Level.ROOMY or before is Level.FULL:
            log.info("store.room_again", **fields, level=after.name.lower())

    def tokens(self) -> list[dict[str, Any]]:
        with self._gate.reading(), self._env.begin(db=self._tokens) as txn:
            return [records.decode_token(k, v) for k, v in txn.cursor()]

    def close(self) -> None:
        self._env.close()
        os.close(self._lock_fd)


class _Tx:
    """An LMDB write transaction as `seatd.store.plan` writes into it."""

    def __init__(self, txn: lmdb.Transaction, dbs: dict[Table, Any]) -> None:
        self._txn = txn
        self._dbs = dbs

    def get(self, table: Table, key: bytes) -> bytes | None:
        raw = self._txn.get(key, db=self._dbs[table])
        return None if raw is None else bytes(raw)

    def put(self, table: Table, key: bytes, value: bytes) -> None:
        self._txn.put(key, value, db=self._dbs[table])

    def append(self, table: Table, key: bytes, value: bytes) -> None:
        self._txn.put(key, value, db=self._dbs[table], append=True)

    def delete(self, table: Table, key: bytes) -> None:
        self._txn.delete(key, db=self._dbs[table])

    def first(self, table: Table) -> tuple[bytes, bytes] | None:
        cursor = self._txn.cursor(db=self._dbs[table])
        return (bytes(cursor.key()), bytes(cursor.value())) if cursor.first() else None

    def last_key(self, table: Table) -> bytes | None:
        cursor = self._txn.cursor(db=self._dbs[table])
        return bytes(cursor.key()) if cursor.last() else None

    def items(self, table: Table) -> Iterator[tuple[bytes, bytes]]:
        for k, v in self._txn.cursor(db=self._dbs[table]):
            yield bytes(k), bytes(v)

    def count(self, table: Table) -> int:
        return int(self._txn.stat(self._dbs[table])["entries"])

    def delete_through(self, table: Table, key: bytes) -> tuple[int, bytes, bytes]:
        cursor = self._txn.cursor(db=self._dbs[table])
        deleted, last_key, last_value = 0, b"", b""
        if cursor.first():
            while cursor.key() and bytes(cursor.key()) <= key:
                last_key, last_value = bytes(cursor.key()), bytes(cursor.value())
                cursor.delete()
                deleted += 1
        return deleted, last_key, last_value
