"""The session journal: an append-only, SHA-256 hash-chained record of seat events.

Each entry is JSON holding its sequence number, the wall time in UTC, the event's fields and
`prev`, the hash of the entry before it. Its own `hash`, stored last, is the SHA-256 of the
canonical JSON (sorted keys, no spaces) of everything else, so changing any byte of any entry
breaks the chain at that entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from seatd.model import (
    ActiveSeatsChanged,
    ClockJumped,
    ClockRollback,
    DaemonEvent,
    Denied,
    Ended,
    Event,
    Granted,
    JournalPruned,
    LicenceCleared,
    LicenceInstalled,
    LicenceStaged,
    LicenceTransferred,
    Reattached,
    Refused,
    Repeated,
    Restored,
    Session,
    StoreProbe,
    TokenCreated,
    TokenRevoked,
    WallSeen,
)

GENESIS = "0" * 64


def canonical(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _session_fields(session: Session) -> dict[str, Any]:
    h = session.holder
    return {
        "session_id": session.id,
        "user_code": h.user_code,
        "user_name": h.user_name,
        "hostname": h.hostname,
        "ip": h.ip,
        "client_version": h.client_version,
    }


def _claims(claimed: str, by_claimed: bool = False) -> dict[str, Any]:
    """What the actor only claimed, beside the actor the daemon can vouch for."""
    fields: dict[str, Any] = {}
    if claimed:
        fields["claimed_user"] = claimed
    if by_claimed:
        fields["by_claimed"] = True
    return fields


def fields_of(event: Event) -> dict[str, Any] | None:
    """The journal fields of one event (without seq, prev and hash); None if not journaled."""
    if isinstance(event, WallSeen | StoreProbe):
        return None
    if isinstance(event, JournalPruned):
        # The store adds what it removed and the anchor hash.
        return {"kind": "journal_pruned", "at": _iso(event.at), "actor": "seatd"}
    if isinstance(event, Repeated):
        # The last repeat's fields (its kind, source and time), with how many and since when.
        last = fields_of(event.last)
        assert last is not None
        return last | {"repeated": event.count, "since": _iso(event.since)}
    if isinstance(event, Reattached):
        return {
            "kind": "renewed_after_restart" if event.after_restart else "reattached",
            "at": _iso(event.at),
            "actor": event.session.holder.user_code,
            **_session_fields(event.session),
        }
    if isinstance(event, Refused):
        h = event.holder
        return {
            "kind": "refused",
            "at": _iso(event.at),
            "actor": h.user_code,
            "reason": event.reason,
            "session_id": 0,
            "user_code": h.user_code,
            "user_name": h.user_name,
            "hostname": h.hostname,
            "ip": h.ip,
            "cap": event.cap,
            "in_use": event.in_use,
        }
    if isinstance(event, TokenCreated):
        return {
            "kind": "token_created",
            "at": _iso(event.at),
            "actor": event.by,
            **_claims(event.claimed),
            "token_name": event.name,
            "role": event.role,
        }
    if isinstance(event, TokenRevoked):
        return {
            "kind": "token_revoked",
            "at": _iso(event.at),
            "actor": event.by,
            **_claims(event.claimed),
            "token_name": event.name,
        }
    if isinstance(event, Denied):
        return {
            "kind": "denied",
            "at": _iso(event.at),
            "actor": event.actor,
            "role": event.role,
            "rpc": event.rpc,
            "reason": f"{event.rpc} needs {event.needed}",
        }
    if isinstance(event, DaemonEvent):
        return {"kind": event.kind, "at": _iso(event.at), "actor": "seatd", "detail": event.detail}
    if isinstance(event, Restored):
        return {
            "kind": "restored",
            "at": _iso(event.at),
            "actor": event.by,
            "detail": f"state restored from {event.backup} at {_iso(event.restored_at)}",
            "backup": event.backup,
            "sha256": event.sha256,
            "bytes": event.size,
            "restored_at": _iso(event.restored_at),
            "backup_last_seq": event.backup_seq,
            "backup_last_at": event.backup_at,
            "replaced": event.replaced,
        }
    if isinstance(event, LicenceInstalled):
        return {
            "kind": "licence_installed",
            "at": _iso(event.at),
            "actor": event.by,
            **_claims(event.claimed),
            "serial": event.serial,
            "seats": event.seats,
            "source": event.source,
            "previous_serial": event.previous_serial,
        }
    if isinstance(event, LicenceStaged):
        return {
            "kind": "licence_staged",
            "at": _iso(event.at),
            "actor": event.by,
            "serial": event.serial,
            "valid_from": event.valid_from.isoformat(),
            "source": event.source,
        }
    if isinstance(event, LicenceTransferred):
        return {
            "kind": "licence_transferred",
            "at": _iso(event.at),
            "actor": event.by,
            "serial": event.serial,
            "to_base_id": event.to_base_id,
            "transferred_at": _iso(event.transferred_at),
            "reason": f"subscription transferred to base id {event.to_base_id}",
        }
    if isinstance(event, LicenceCleared):
        return {
            "kind": "licence_cleared",
            "at": _iso(event.at),
            "actor": event.by,
            **_claims(event.claimed),
            "previous_serial": event.previous_serial,
        }
    if isinstance(event, ActiveSeatsChanged):
        return {
            "kind": "active_seats_changed",
            "at": _iso(event.at),
            "actor": event.by,
            **_claims(event.claimed),
            "old": event.old,
            "new": event.new,
        }
    if isinstance(event, ClockRollback | ClockJumped):
        off_by = round((event.wall - event.trusted).total_seconds(), 3)
        rollback = isinstance(event, ClockRollback)
        return {
            "kind": "clock_rollback" if rollback else "clock_jump",
            "at": _iso(event.at),
            "actor": "seatd",
            "wall": _iso(event.wall),
            "trusted": _iso(event.trusted),
            **({"behind_seconds": -off_by} if rollback else {"ahead_seconds": off_by}),
        }
    if isinstance(event, Granted):
        s = event.session
        return {
            "kind": "granted",
            "at": _iso(s.started_at),
            "actor": s.holder.user_code,
            **_session_fields(s),
        }
    assert isinstance(event, Ended)
    e = event.ending
    fields = {
        "kind": e.kind.name.lower(),
        "at": _iso(e.at),
        "actor": e.by,
        **_claims(e.claimed, e.by_claimed),
        "reason": e.reason,
        "held_for": round((e.at - e.session.started_at).total_seconds(), 3),
        **_session_fields(e.session),
    }
    if e.silent_for:
        fields["silent_for"] = round(e.silent_for, 3)
    return fields


def _iso(when: Any) -> str:
    return str(when.isoformat().replace("+00:00", "Z"))


@dataclass(frozen=True, slots=True)
class Link:
    """One entry as stored: its sequence number and canonical bytes."""

    seq: int
    raw: bytes


def chain(fields: Mapping[str, Any], seq: int, prev: str) -> tuple[bytes, str]:
    """Seal one entry after `prev`: return its stored bytes and its hash."""
    body = canonical({**fields, "seq": seq, "prev": prev})
    digest = hashlib.sha256(body).hexdigest()
    # The hash is appended last rather than in key order: every reader decodes the JSON and
    # verify re-canonicalises what it reads, so the entry is encoded once, not twice.
    return body[:-1] + b',"hash":"' + digest.encode() + b'"}', digest


def first_broken(links: Iterable[Link], start_prev: str = GENESIS) -> int | None:
    """Walk the chain; return the seq of the first entry that does not verify, or None."""
    prev = start_prev
    for link in links:
        try:
            entry = json.loads(link.raw)
            claimed = entry.pop("hash")
            ok = (
                entry.get("seq") == link.seq
                and entry.get("prev") == prev
                and hashlib.sha256(canonical(entry)).hexdigest() == claimed
            )
        except (ValueError, KeyError, AttributeError):
            ok = False
        if not ok:
            return link.seq
        prev = claimed
    return None


def tail_break(last: tuple[int, str], head: tuple[int, str]) -> int | None:
    """Where the journal's last entry (seq, hash) departs from its recorded head, or None.

    The head is stored with every commit, so a tail cut off (or an entry appended behind the
    store's back) is caught even though the remaining entries still chain.
    """
    if last == head:
        return None
    if head[0] > last[0]:
        return last[0] + 1
    if head[0] < last[0]:
        return head[0] + 1
    return last[0]


def first_unproven(
    links: Sequence[Link], anchor: tuple[int, str], head: tuple[int, str]
) -> int | None:
    """The first seq the chain does not prove from `anchor` (the pruning checkpoint, or seq 0
    and GENESIS) to `head`: an altered or missing entry, or a missing tail. None when intact."""
    if links and links[0].seq != anchor[0] + 1:
        return links[0].seq
    broken = first_broken(links, anchor[1])
    if broken is not None:
        return broken
    last = (links[-1].seq, str(json.loads(links[-1].raw)["hash"])) if links else anchor
    return tail_break(last, head)


@dataclass(frozen=True, slots=True)
class Filter:
    """Which entries a reader wants; empty fields match everything."""

    since: datetime | None = None
    until: datetime | None = None
    user_code: str = ""
    session_id: int = 0
    kinds: frozenset[str] = frozenset()

    def matches(self, entry: Mapping[str, Any]) -> bool:
        if self.kinds and entry.get("kind") not in self.kinds:
            return False
        if self.user_code and entry.get("user_code") != self.user_code:
            return False
        if self.session_id and entry.get("session_id") != self.session_id:
            return False
        if self.since or self.until:
            at = datetime.fromisoformat(str(entry.get("at", "")).replace("Z", "+00:00"))
            if self.since and at < self.since:
                return False
            if self.until and at >= self.until:
                return False
        return True
