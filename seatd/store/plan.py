"""What a commit writes, for every backend: from events to record writes and the next head.

`apply` turns a group commit's events into puts and deletes on a `Tx` (one transaction of
the backend) and returns the journal's new head. The backend only says how a table is read
and written inside its transaction; which records an event touches, the hash chain, what
pruning removes and which endings are kept are decided here, once.

Tables and keys are the LMDB ones (named databases; 8-byte big-endian sequence keys), so the
decoders in `seatd.records` read both backends.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from seatd import journal, records
from seatd.model import (
    ENDINGS_KEPT,
    ENDINGS_MAX_AGE,
    ActiveSeatsChanged,
    Ended,
    Ending,
    EndKind,
    Event,
    Granted,
    JournalPruned,
    LicenceCleared,
    LicenceInstalled,
    LicenceStaged,
    LicenceTransferred,
    Restored,
    StoreProbe,
    TokenCreated,
    TokenRevoked,
    WallSeen,
)
from seatd.store.base import Table

# What the watchdog's write probe needs free in the store.
PROBE_BYTES = 64 << 10

_key = records.seq_key


class Tx(Protocol):
    """One write transaction; reads see its own writes."""

    def get(self, table: Table, key: bytes) -> bytes | None: ...

    def put(self, table: Table, key: bytes, value: bytes) -> None: ...

    def append(self, table: Table, key: bytes, value: bytes) -> None:
        """Put a key past every key the table holds."""

    def delete(self, table: Table, key: bytes) -> None: ...

    def first(self, table: Table) -> tuple[bytes, bytes] | None: ...

    def last_key(self, table: Table) -> bytes | None: ...

    def count(self, table: Table) -> int: ...

    def delete_through(self, table: Table, key: bytes) -> tuple[int, bytes, bytes]:
        """Delete every key up to `key` included: how many, and the last one's key and value
        (empty when none)."""


def apply(tx: Tx, events: Sequence[Event], head: tuple[int, str]) -> tuple[int, str]:
    """Write `events` and their journal entries into `tx`; the journal's head after them
    (written to meta in the same transaction when it moved)."""
    seq, prev = head
    for event in events:
        if isinstance(event, Granted):
            s = event.session
            tx.put("sessions", _key(s.id), records.encode_session(s))
            tx.put("meta", b"next_session_id", str(s.id + 1).encode())
        elif isinstance(event, Ended):
            tx.delete("sessions", _key(event.ending.session.id))
        else:
            _put_state(tx, event)
        fields = journal.fields_of(event)
        if fields is None:
            continue
        if isinstance(event, JournalPruned):
            fields |= _prune(tx, event.up_to_seq)
        seq += 1
        raw, prev = journal.chain(fields, seq, prev)
        tx.append("journal", _key(seq), raw)
        if isinstance(event, Ended) and event.ending.kind is not EndKind.RELEASED:
            # Who released a seat knows it: only evictions and expiries are kept.
            _keep_ending(tx, seq, event.ending)
    if (seq, prev) != head:
        tx.put("meta", b"journal_head", records.encode_chain_point(seq, prev))
    return seq, prev


def _prune(tx: Tx, up_to: int) -> dict[str, Any]:
    pruned, last_key, last_value = tx.delete_through("journal", _key(up_to))
    if not pruned:
        return {"pruned": 0, "pruned_up_to_seq": 0, "anchor_hash": ""}
    last = records.U64.unpack(last_key)[0]
    anchor = str(json.loads(last_value)["hash"])
    tx.put("meta", b"journal_checkpoint", journal.canonical({"seq": last, "hash": anchor}))
    return {"pruned": pruned, "pruned_up_to_seq": last, "anchor_hash": anchor}


def _keep_ending(tx: Tx, seq: int, ending: Ending) -> None:
    """Keep an ending with the change that made it; drop the oldest beyond the bounds."""
    tx.append("endings", _key(seq), records.encode_ending(ending))
    count = tx.count("endings")
    oldest_kept = ending.at - ENDINGS_MAX_AGE
    while (first := tx.first("endings")) is not None and (
        count > ENDINGS_KEPT or records.decode_ending(*first).at < oldest_kept
    ):
        tx.delete("endings", first[0])
        count -= 1


def _put_state(tx: Tx, event: Event) -> None:
    if isinstance(event, TokenCreated):
        record = {
            "name": event.name,
            "role": event.role,
            "hash": event.token_hash,
            "created_by": event.by,
            "created_at": event.at.isoformat(),
            "revoked_at": None,
        }
        tx.put("tokens", event.name.encode(), journal.canonical(record))
        return
    if isinstance(event, TokenRevoked):
        raw = tx.get("tokens", event.name.encode())
        if raw is not None:
            record = json.loads(raw) | {"revoked_at": event.at.isoformat()}
            tx.put("tokens", event.name.encode(), journal.canonical(record))
        return
    if isinstance(event, WallSeen):
        tx.put("meta", b"last_seen", event.at.isoformat().encode())
        return
    if isinstance(event, StoreProbe):
        # Room for a decision's worth of pages, taken and given back in this transaction:
        # the probe fails where a real commit would, and leaves nothing behind.
        tx.put("meta", b"probe", b"\0" * PROBE_BYTES)
        tx.delete("meta", b"probe")
        return
    if isinstance(event, LicenceStaged):
        tx.put("licence", b"next", event.text.encode())
        tx.put("licence", b"next_serial", event.serial.encode())
        return
    if isinstance(event, LicenceTransferred):
        moved = {
            "to_base_id": event.to_base_id,
            "at": event.transferred_at.isoformat(),
            "serial": event.serial,
        }
        tx.put("licence", b"transferred", journal.canonical(moved))
        _drop_next(tx)
        return
    if isinstance(event, Restored):
        tx.delete("meta", b"restored")  # journaled once, with this very commit
        return
    if isinstance(event, LicenceInstalled):
        tx.delete("licence", b"transferred")
        tx.put("licence", b"current", event.text.encode())
        tx.put("licence", b"active_seats", str(event.seats).encode())
        if tx.get("licence", b"next_serial") == event.serial.encode():
            _drop_next(tx)
        if event.lineage:
            # Kept when the licence is cleared too: no older licence comes back.
            tx.put("licence", b"lineage", event.lineage.encode())
        entry = {"serial": event.serial, "source": event.source}
    elif isinstance(event, LicenceCleared):
        tx.delete("licence", b"current")
        tx.delete("licence", b"active_seats")
        tx.delete("licence", b"transferred")
        _drop_next(tx)
        entry = {"serial": "", "source": "clear"}
    elif isinstance(event, ActiveSeatsChanged):
        tx.put("licence", b"active_seats", str(event.new).encode())
        return
    else:
        return
    last = tx.last_key("licence_history")
    n = records.U64.unpack(last)[0] + 1 if last is not None else 1
    entry |= {
        "at": event.at.isoformat().replace("+00:00", "Z"),
        "by": event.by,
        "previous_serial": event.previous_serial,
    }
    tx.append("licence_history", _key(n), journal.canonical(entry))


def _drop_next(tx: Tx) -> None:
    tx.delete("licence", b"next")
    tx.delete("licence", b"next_serial")
