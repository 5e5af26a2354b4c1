"""LMDB state: sessions, journal and meta, in one environment.

A seat change and its journal entry always commit in one write transaction (`commit`),
which only the writer thread of `seatd.committer` calls. Reads (`load`, `journal`) use read
transactions and may run on any thread. The store owns the state directory for the life of
the process through an exclusive lock file, so two daemons never share one seat table.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import shutil
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import lmdb

from seatd import filemodes, journal
from seatd.errors import StateError, StorageFailed
from seatd.model import (
    ActiveSeatsChanged,
    Ended,
    Event,
    Granted,
    Holder,
    JournalPruned,
    LicenceCleared,
    LicenceInstalled,
    LicenceStaged,
    LicenceTransferred,
    Session,
    TokenCreated,
    TokenRevoked,
    WallSeen,
)

SCHEMA_VERSION = 1
DEFAULT_MAP_SIZE = 1 << 30
_U64 = struct.Struct(">Q")


@dataclass(frozen=True, slots=True)
class StoreConfig:
    state_dir: Path = Path("/var/lib/seatd")
    # LMDB map size in bytes: the most the state may ever take (the file grows as needed).
    map_size: int = DEFAULT_MAP_SIZE


@dataclass(frozen=True, slots=True)
class Snapshot:
    sessions: list[Session]
    next_id: int
    base_id: str
    licence_text: str | None
    active_seats: int | None
    last_seen: datetime | None
    installation_secret: str
    # A licence paid for a later period, installed on its start date.
    next_licence_text: str | None = None
    # Where the subscription went ({"to_base_id", "at", "serial"}), when it was transferred.
    transferred: dict[str, str] | None = None


def _key(n: int) -> bytes:
    return _U64.pack(n)


def _encode_session(s: Session) -> bytes:
    h = s.holder
    return journal.canonical(
        {
            "id": s.id,
            "user_code": h.user_code,
            "user_name": h.user_name,
            "hostname": h.hostname,
            "ip": h.ip,
            "client_version": h.client_version,
            "key": s.key,
            "token": s.token,
            "started_at": s.started_at.isoformat(),
            "last_seen_at": s.last_seen_at.isoformat(),
        }
    )


def _decode_session(raw: bytes) -> Session:
    d: dict[str, Any] = json.loads(raw)
    holder = Holder(d["user_code"], d["user_name"], d["hostname"], d["ip"], d["client_version"])
    return Session(
        id=d["id"],
        holder=holder,
        key=d["key"],
        token=d["token"],
        started_at=datetime.fromisoformat(d["started_at"]),
        last_seen_at=datetime.fromisoformat(d["last_seen_at"]),
        renewed_at=0.0,
        expires_at=0.0,
    )


def restore(backup: Path, state_dir: Path) -> Snapshot:
    """Replace the state in `state_dir` with `backup` (an LMDB data file).

    Refuses while a daemon holds the state directory, and refuses a file that is not a seat
    table of this schema. The state it replaces is kept beside it.
    """
    check_dir = Path(tempfile.mkdtemp(prefix="restore-", dir=state_dir))
    try:
        filemodes.private_dir(check_dir / "seatd.lmdb")
        filemodes.copy_private(backup, check_dir / "seatd.lmdb" / "data.mdb")
        try:
            probe = Store(StoreConfig(check_dir))
        except StateError as exc:
            raise StateError(f"{backup} is not a usable seat table backup: {exc}") from exc
        snapshot = probe.load()
        probe.close()
        live = Store(StoreConfig(state_dir))  # takes the lock: refuses while a daemon runs
        live.close()
        target = state_dir / "seatd.lmdb"
        if target.exists():
            kept = state_dir / f"seatd.lmdb.before-restore-{os.getpid()}"
            target.rename(kept)
        filemodes.private_dir(target)
        filemodes.copy_private(check_dir / "seatd.lmdb" / "data.mdb", target / "data.mdb")
        filemodes.hand_over([target, target / "data.mdb"], state_dir)
        return snapshot
    finally:
        shutil.rmtree(check_dir, ignore_errors=True)


class Store:
    def __init__(self, config: StoreConfig) -> None:
        self.path = config.state_dir
        self._lock_fd = self._lock(config.state_dir)
        try:
            # Made here, 0700: given only a file mode, LMDB would create it without search bit.
            env_dir = filemodes.private_dir(config.state_dir / "seatd.lmdb")
            self._env = lmdb.open(
                str(env_dir), map_size=config.map_size, max_dbs=8, mode=filemodes.PRIVATE_FILE
            )
        except (lmdb.Error, OSError) as exc:
            os.close(self._lock_fd)
            raise StateError(f"cannot open the seat table in {config.state_dir}: {exc}") from exc
        self._meta = self._env.open_db(b"meta")
        self._sessions = self._env.open_db(b"sessions")
        self._journal = self._env.open_db(b"journal")
        self._licence = self._env.open_db(b"licence")
        self._history = self._env.open_db(b"licence_history")
        self._tokens = self._env.open_db(b"tokens")
        self._check_schema()
        self._head = self._journal_head()

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

    def _check_schema(self) -> None:
        with self._env.begin(write=True, db=self._meta) as txn:
            found = txn.get(b"schema_version")
            if txn.get(b"base_id") is None:
                # The customer database's "Num ID": 17 random digits, fixed for good.
                txn.put(b"base_id", str(10**16 + secrets.randbelow(9 * 10**16)).encode())
            if txn.get(b"installation_secret") is None:
                # Registered with the vendor's cloud at the first sync (trust on first use).
                txn.put(b"installation_secret", secrets.token_urlsafe(32).encode())
            if found is None:
                txn.put(b"schema_version", str(SCHEMA_VERSION).encode())
                txn.put(b"next_session_id", b"1")
                return
        if int(found) != SCHEMA_VERSION:
            self.close()
            raise StateError(
                f"the seat table in {self.path} has schema version {int(found)}, this seatd "
                f"reads version {SCHEMA_VERSION}: restore a backup made by a matching version"
            )

    def _journal_head(self) -> tuple[int, str]:
        with self._env.begin(db=self._journal) as txn:
            cursor = txn.cursor()
            if not cursor.last():
                return 0, journal.GENESIS
            seq = _U64.unpack(cursor.key())[0]
            return seq, str(json.loads(cursor.value())["hash"])

    # -- reads -----------------------------------------------------------------------------

    def backup(self, directory: Path) -> Path:
        """A consistent, compacted copy of the environment in `directory` (a read txn)."""
        self._env.copy(str(directory), compact=True)
        return directory / "data.mdb"

    def ping(self) -> None:
        """A read transaction, for the watchdog's self-check."""
        with self._env.begin(db=self._meta) as txn:
            if txn.get(b"schema_version") is None:
                raise StateError("the seat table has no schema version")

    def load(self) -> Snapshot:
        with self._env.begin() as txn:
            meta = txn.cursor(db=self._meta)
            next_id = int(meta.get(b"next_session_id") or b"1")
            base_id = bytes(meta.get(b"base_id") or b"").decode()
            last_seen = meta.get(b"last_seen")
            secret = bytes(meta.get(b"installation_secret") or b"").decode()
            sessions = [_decode_session(v) for _, v in txn.cursor(db=self._sessions)]
            text = txn.get(b"current", db=self._licence)
            active = txn.get(b"active_seats", db=self._licence)
            upcoming = txn.get(b"next", db=self._licence)
            moved = txn.get(b"transferred", db=self._licence)
        return Snapshot(
            sessions,
            next_id,
            base_id,
            bytes(text).decode() if text is not None else None,
            int(active) if active is not None else None,
            datetime.fromisoformat(bytes(last_seen).decode()) if last_seen else None,
            secret,
            bytes(upcoming).decode() if upcoming is not None else None,
            json.loads(bytes(moved)) if moved is not None else None,
        )

    def licence_history(self) -> list[dict[str, Any]]:
        with self._env.begin(db=self._history) as txn:
            return [json.loads(v) for _, v in txn.cursor()]

    def journal_links(self) -> Iterator[journal.Link]:
        with self._env.begin(db=self._journal) as txn:
            for k, v in txn.cursor():
                yield journal.Link(_U64.unpack(k)[0], bytes(v))

    def read_journal(
        self, after_seq: int, limit: int, keep: journal.Filter
    ) -> tuple[list[tuple[int, bytes, dict[str, Any]]], bool]:
        """Up to `limit` matching entries after `after_seq`, and whether more may follow."""
        found: list[tuple[int, bytes, dict[str, Any]]] = []
        with self._env.begin(db=self._journal) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(_key(after_seq + 1)):
                return found, False
            for k, v in cursor:
                if len(found) == limit:
                    return found, True
                entry = json.loads(bytes(v))
                if keep.matches(entry):
                    found.append((_U64.unpack(k)[0], bytes(v), entry))
        return found, False

    def checkpoint(self) -> tuple[int, str]:
        """The last pruned seq and its hash: where verification starts (0, GENESIS if none)."""
        with self._env.begin(db=self._meta) as txn:
            raw = txn.get(b"journal_checkpoint")
        if raw is None:
            return 0, journal.GENESIS
        found = json.loads(bytes(raw))
        return int(found["seq"]), str(found["hash"])

    def verify_journal(self) -> tuple[int, int | None, int]:
        """Entries, the first broken seq (None if intact), and the last seq."""
        links = list(self.journal_links())
        last = links[-1].seq if links else 0
        seq, anchor = self.checkpoint()
        if links and links[0].seq != seq + 1:
            return len(links), links[0].seq, last
        return len(links), journal.first_broken(links, anchor), last

    def _prune(self, txn: lmdb.Transaction, up_to: int) -> dict[str, Any]:
        cursor = txn.cursor(db=self._journal)
        pruned, anchor, last = 0, "", 0
        if cursor.first():
            while cursor.key() and _U64.unpack(cursor.key())[0] <= up_to:
                last = _U64.unpack(cursor.key())[0]
                anchor = str(json.loads(bytes(cursor.value()))["hash"])
                cursor.delete()
                pruned += 1
        if pruned:
            txn.put(
                b"journal_checkpoint",
                journal.canonical({"seq": last, "hash": anchor}),
                db=self._meta,
            )
        return {"pruned": pruned, "pruned_up_to_seq": last, "anchor_hash": anchor}

    def journal_entries(self) -> list[dict[str, Any]]:
        return [json.loads(link.raw) for link in self.journal_links()]

    # -- the one write path -----------------------------------------------------------------

    def commit(self, events: Sequence[Event]) -> None:
        """Persist seat changes and their journal entries in one transaction."""
        seq, prev = self._head
        try:
            with self._env.begin(write=True) as txn:
                for event in events:
                    if isinstance(event, Granted):
                        s = event.session
                        txn.put(_key(s.id), _encode_session(s), db=self._sessions)
                        txn.put(b"next_session_id", str(s.id + 1).encode(), db=self._meta)
                    elif isinstance(event, Ended):
                        txn.delete(_key(event.ending.session.id), db=self._sessions)
                    else:
                        self._put_state(txn, event)
                    fields = journal.fields_of(event)
                    if fields is None:
                        continue
                    if isinstance(event, JournalPruned):
                        fields |= self._prune(txn, event.up_to_seq)
                    seq += 1
                    raw, prev = journal.chain(fields, seq, prev)
                    txn.put(_key(seq), raw, db=self._journal, append=True)
        except lmdb.MapFullError as exc:
            raise StorageFailed("the seat table has reached its configured map size") from exc
        except (lmdb.Error, OSError) as exc:
            no_space = getattr(exc, "errno", None) == errno.ENOSPC or "space" in str(exc)
            raise StorageFailed("the disk is full" if no_space else f"write failed: {exc}") from exc
        self._head = (seq, prev)

    def tokens(self) -> list[dict[str, Any]]:
        with self._env.begin(db=self._tokens) as txn:
            return [json.loads(bytes(v)) for _, v in txn.cursor()]

    def _put_state(self, txn: lmdb.Transaction, event: Event) -> None:
        if isinstance(event, TokenCreated):
            record = {
                "name": event.name,
                "role": event.role,
                "hash": event.token_hash,
                "created_by": event.by,
                "created_at": event.at.isoformat(),
                "revoked_at": None,
            }
            txn.put(event.name.encode(), journal.canonical(record), db=self._tokens)
            return
        if isinstance(event, TokenRevoked):
            raw = txn.get(event.name.encode(), db=self._tokens)
            if raw is not None:
                record = json.loads(bytes(raw)) | {"revoked_at": event.at.isoformat()}
                txn.put(event.name.encode(), journal.canonical(record), db=self._tokens)
            return
        if isinstance(event, WallSeen):
            txn.put(b"last_seen", event.at.isoformat().encode(), db=self._meta)
            return
        if isinstance(event, LicenceStaged):
            txn.put(b"next", event.text.encode(), db=self._licence)
            txn.put(b"next_serial", event.serial.encode(), db=self._licence)
            return
        if isinstance(event, LicenceTransferred):
            moved = {
                "to_base_id": event.to_base_id,
                "at": event.transferred_at.isoformat(),
                "serial": event.serial,
            }
            txn.put(b"transferred", journal.canonical(moved), db=self._licence)
            self._drop_next(txn)
            return
        if isinstance(event, LicenceInstalled):
            txn.delete(b"transferred", db=self._licence)
            txn.put(b"current", event.text.encode(), db=self._licence)
            txn.put(b"active_seats", str(event.seats).encode(), db=self._licence)
            if txn.get(b"next_serial", db=self._licence) == event.serial.encode():
                self._drop_next(txn)
            entry = {"serial": event.serial, "source": event.source}
        elif isinstance(event, LicenceCleared):
            txn.delete(b"current", db=self._licence)
            txn.delete(b"active_seats", db=self._licence)
            txn.delete(b"transferred", db=self._licence)
            self._drop_next(txn)
            entry = {"serial": "", "source": "clear"}
        elif isinstance(event, ActiveSeatsChanged):
            txn.put(b"active_seats", str(event.new).encode(), db=self._licence)
            return
        else:
            return
        cursor = txn.cursor(db=self._history)
        n = _U64.unpack(cursor.key())[0] + 1 if cursor.last() else 1
        entry |= {
            "at": event.at.isoformat().replace("+00:00", "Z"),
            "by": event.by,
            "previous_serial": event.previous_serial,
        }
        txn.put(_key(n), journal.canonical(entry), db=self._history, append=True)

    def _drop_next(self, txn: lmdb.Transaction) -> None:
        txn.delete(b"next", db=self._licence)
        txn.delete(b"next_serial", db=self._licence)

    def close(self) -> None:
        self._env.close()
        os.close(self._lock_fd)
