"""How the seat table's records are stored, and read back without trusting them.

Every decoder raises `DamagedRecord` naming the database and the key when a record does not
decode (not JSON, a field missing or of the wrong type, a number that is not one), so a damaged
record is reported as what it is rather than as a traceback. The store reads through these
decoders, and the check before serving (`seatd.integrity`) decodes every record with them.
"""

from __future__ import annotations

import json
import struct
from datetime import datetime
from typing import Any

from seatd import journal
from seatd.errors import DamagedRecord
from seatd.model import Ending, EndKind, Holder, Session

# 2: meta holds the journal's head (sequence and hash), written with every commit.
SCHEMA_VERSION = 2
U64 = struct.Struct(">Q")


def seq_key(n: int) -> bytes:
    return U64.pack(n)


def key_name(db: str, key: bytes) -> str:
    """A key as people read it: a number for the databases keyed by one, else its text."""
    if len(key) == U64.size and db in ("sessions", "journal", "licence_history", "endings"):
        return str(U64.unpack(key)[0])
    return repr(key.decode(errors="replace"))


def key_number(db: str, key: bytes) -> int:
    if len(key) != U64.size:
        raise DamagedRecord(db, key_name(db, key), "has a key that is not a sequence number")
    return int(U64.unpack(key)[0])


class _Fields:
    """A decoded JSON object whose accessors name the record when a field is wrong."""

    def __init__(self, db: str, key: bytes, raw: bytes) -> None:
        self.db, self.key = db, key
        try:
            found = json.loads(raw)
        except ValueError as exc:
            raise self.damaged(f"is not JSON ({exc})") from None
        if not isinstance(found, dict):
            raise self.damaged("is not a JSON object")
        self.d: dict[str, Any] = found

    def damaged(self, problem: str) -> DamagedRecord:
        return DamagedRecord(self.db, key_name(self.db, self.key), problem)

    def get(self, name: str, kind: type) -> Any:
        if name not in self.d:
            raise self.damaged(f"has no field {name!r}")
        value = self.d[name]
        # bool is an int to Python, never to this store.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.damaged(f"has field {name!r} that is not {kind.__name__}: {value!r}")
        return value

    def time(self, name: str) -> datetime:
        text = self.get(name, str)
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise self.damaged(f"has field {name!r} that is not a date-time: {text!r}") from None


def encode_session(s: Session) -> bytes:
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


def decode_session(key: bytes, raw: bytes) -> Session:
    f = _Fields("sessions", key, raw)
    sid = f.get("id", int)
    if sid != key_number("sessions", key):
        raise f.damaged(f"holds session {sid}")
    holder = Holder(
        f.get("user_code", str),
        f.get("user_name", str),
        f.get("hostname", str),
        f.get("ip", str),
        f.get("client_version", str),
    )
    return Session(
        id=sid,
        holder=holder,
        key=f.get("key", str),
        token=f.get("token", str),
        started_at=f.time("started_at"),
        last_seen_at=f.time("last_seen_at"),
        renewed_at=0.0,
        expires_at=0.0,
    )


def encode_ending(e: Ending) -> bytes:
    """An ending as kept. Its token stays (as in `sessions`): only the session's holder is
    told how it ended."""
    h = e.session.holder
    return journal.canonical(
        {
            "id": e.session.id,
            "token": e.session.token,
            "user_code": h.user_code,
            "user_name": h.user_name,
            "hostname": h.hostname,
            "ip": h.ip,
            "client_version": h.client_version,
            "started_at": e.session.started_at.isoformat(),
            "last_seen_at": e.session.last_seen_at.isoformat(),
            "kind": e.kind.name,
            "reason": e.reason,
            "by": e.by,
            "at": e.at.isoformat(),
            "silent_for": float(e.silent_for),
            "claimed": e.claimed,
            "by_claimed": e.by_claimed,
        }
    )


def decode_ending(key: bytes, raw: bytes) -> Ending:
    """An ending kept in `endings`, keyed by the journal seq of its entry."""
    f = _Fields("endings", key, raw)
    key_number("endings", key)
    kind = f.get("kind", str)
    if kind not in EndKind.__members__:
        raise f.damaged(f"has kind {kind!r}")
    session = Session(
        id=f.get("id", int),
        holder=Holder(
            f.get("user_code", str),
            f.get("user_name", str),
            f.get("hostname", str),
            f.get("ip", str),
            f.get("client_version", str),
        ),
        key="",
        token=f.get("token", str),
        started_at=f.time("started_at"),
        last_seen_at=f.time("last_seen_at"),
        renewed_at=0.0,
        expires_at=0.0,
    )
    return Ending(
        session,
        EndKind[kind],
        f.get("reason", str),
        f.get("by", str),
        f.time("at"),
        f.get("silent_for", float),
        f.get("claimed", str),
        f.get("by_claimed", bool),
    )


def decode_number(db: str, key: bytes, raw: bytes) -> int:
    try:
        return int(bytes(raw).decode("ascii"))
    except ValueError:
        raise DamagedRecord(
            db, key_name(db, key), f"is not a number: {bytes(raw)[:40]!r}"
        ) from None


def decode_text(db: str, key: bytes, raw: bytes) -> str:
    try:
        return bytes(raw).decode()
    except UnicodeDecodeError:
        raise DamagedRecord(db, key_name(db, key), "is not UTF-8 text") from None


def decode_time(db: str, key: bytes, raw: bytes) -> datetime:
    text = decode_text(db, key, raw)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise DamagedRecord(db, key_name(db, key), f"is not a date-time: {text[:40]!r}") from None


def encode_chain_point(seq: int, digest: str) -> bytes:
    return journal.canonical({"seq": seq, "hash": digest})


def decode_chain_point(db: str, key: bytes, raw: bytes) -> tuple[int, str]:
    """A journal position (sequence and hash): the chain's head, or the pruning checkpoint."""
    f = _Fields(db, key, raw)
    return f.get("seq", int), f.get("hash", str)


def decode_restored(db: str, key: bytes, raw: bytes) -> dict[str, Any]:
    """Where a restored table came from (`seatd restore`), until the daemon has journaled it."""
    f = _Fields(db, key, raw)
    for name in ("by", "backup", "sha256", "backup_at", "replaced"):
        f.get(name, str)
    for name in ("bytes", "backup_seq"):
        f.get(name, int)
    f.time("restored_at")
    return f.d


def decode_entry(key: bytes, raw: bytes) -> dict[str, Any]:
    """A journal entry as a dict; its sequence must be its key (its hash is checked by verify)."""
    f = _Fields("journal", key, raw)
    if f.get("seq", int) != key_number("journal", key):
        raise f.damaged(f"holds seq {f.d['seq']}")
    f.get("hash", str)
    return f.d


def decode_token(key: bytes, raw: bytes) -> dict[str, Any]:
    f = _Fields("tokens", key, raw)
    for name in ("name", "role", "hash", "created_by", "created_at"):
        f.get(name, str)
    return f.d


def decode_history(key: bytes, raw: bytes) -> dict[str, Any]:
    f = _Fields("licence_history", key, raw)
    for name in ("serial", "source", "at", "by"):
        f.get(name, str)
    return f.d


def decode_transfer(key: bytes, raw: bytes) -> dict[str, str]:
    """Where the licence's subscription moved (base id, when, serial), as the book reads it."""
    f = _Fields("licence", key, raw)
    f.time("at")
    return {name: f.get(name, str) for name in ("to_base_id", "at", "serial")}
