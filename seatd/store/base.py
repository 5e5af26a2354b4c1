"""What every store backend offers: the one interface the daemon, the service and the admin
reads know. Which backend is underneath (LMDB by default, etcd in cluster mode) is decided
once, by `seatd.store.open_store`.

The interface is synchronous. `commit` runs on the committer's writer thread (group commit:
one call = one transaction, all or nothing, journal head included); reads may run on any
thread. A backend that talks asyncio (etcd) runs its client on a loop of its own, so the
daemon's loop never hosts a store round trip it did not ask for.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from seatd import journal, records
from seatd.capacity import Capacity
from seatd.model import Ending, Event, Session

Table = Literal["meta", "sessions", "journal", "licence", "licence_history", "tokens", "endings"]
TABLES: tuple[Table, ...] = (
    "meta",
    "sessions",
    "journal",
    "licence",
    "licence_history",
    "tokens",
    "endings",
)
# Tables keyed by a sequence number (records.seq_key, 8 bytes big-endian), in numeric order.
NUMBERED: frozenset[Table] = frozenset({"sessions", "journal", "licence_history", "endings"})


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
    # Set by `restore` until the daemon has journaled it: the `Restored` event's fields.
    restored: dict[str, Any] | None = None
    # Recent evictions and expiries, oldest first (bounded: ENDINGS_KEPT, ENDINGS_MAX_AGE).
    endings: list[Ending] = field(default_factory=list)
    # The licences this server has had (seatd.licence.rules.Lineage, JSON); None before any.
    lineage: str | None = None


class Reader(Protocol):
    """One consistent read of the tables (a read transaction, or one etcd revision)."""

    def get(self, table: Table, key: bytes) -> bytes | None: ...

    def items(self, table: Table) -> Iterable[tuple[bytes, bytes]]:
        """Every (key, value) of the table, in key order."""


def read_snapshot(read: Reader) -> Snapshot:
    """The state to serve, decoded. Raises DamagedRecord naming a record that does not decode."""

    def meta(key: bytes) -> bytes:
        return read.get("meta", key) or b""

    text = read.get("licence", b"current")
    active = read.get("licence", b"active_seats")
    last_seen = read.get("meta", b"last_seen")
    upcoming = read.get("licence", b"next")
    moved = read.get("licence", b"transferred")
    restored = read.get("meta", b"restored")
    lineage = read.get("licence", b"lineage")
    return Snapshot(
        [records.decode_session(k, v) for k, v in read.items("sessions")],
        records.decode_number("meta", b"next_session_id", meta(b"next_session_id")),
        records.decode_text("meta", b"base_id", meta(b"base_id")),
        records.decode_text("licence", b"current", text) if text is not None else None,
        records.decode_number("licence", b"active_seats", active) if active is not None else None,
        records.decode_time("meta", b"last_seen", last_seen) if last_seen else None,
        records.decode_text("meta", b"installation_secret", meta(b"installation_secret")),
        records.decode_text("licence", b"next", upcoming) if upcoming is not None else None,
        records.decode_transfer(b"transferred", moved) if moved is not None else None,
        records.decode_restored("meta", b"restored", restored) if restored else None,
        [records.decode_ending(k, v) for k, v in read.items("endings")],
        lineage.decode() if lineage is not None else None,
    )


class Store(Protocol):
    """A seat table: sessions, meta, licence, tokens, kept endings and the hash-chained
    journal, written only through `commit`."""

    @property
    def created(self) -> bool:
        """Whether this open created the table (a first start)."""

    @property
    def capacity(self) -> Capacity:
        """How full the store is, as of the last commit."""

    @property
    def path(self) -> Path | None:
        """A local directory the store owns (scratch space for backups); None if none."""

    @property
    def max_batch_events(self) -> int:
        """The most events one `commit` can hold (the committer never batches more)."""

    def load(self) -> Snapshot:
        """The state to serve. Raises DamagedRecord naming a record that does not decode."""

    def commit(self, events: Sequence[Event]) -> None:
        """Persist seat changes and their journal entries in one transaction, or nothing:
        raises StorageFailed (or its subclass `Fenced`) having changed nothing."""

    def recorded_head(self) -> tuple[int, str]:
        """The journal's head (seq, hash) as the store records it with every commit."""

    def tokens(self) -> list[dict[str, Any]]: ...

    def licence_history(self) -> list[dict[str, Any]]: ...

    def journal_links(self) -> Iterator[journal.Link]: ...

    def journal_span(self) -> tuple[int, int]:
        """The first and last seq held (first > last when the journal is empty)."""

    def journal_times(self) -> Generator[tuple[int, datetime], None, None]:
        """(seq, at) from the oldest entry on, read lazily: close it when done."""

    def read_journal(
        self, after_seq: int, limit: int, keep: journal.Filter
    ) -> tuple[list[tuple[int, bytes, dict[str, Any]]], bool]:
        """Up to `limit` matching entries after `after_seq`, and whether more may follow."""

    def verify_journal(self) -> tuple[int, int | None, int]:
        """Entries, the first seq the chain does not prove (None if intact), and the last."""

    def journal_entries(self) -> list[dict[str, Any]]: ...

    def backup(self, directory: Path) -> Path:
        """A consistent copy of the whole table as an LMDB data file in `directory`."""

    def close(self) -> None: ...
