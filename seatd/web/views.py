"""What the pages show, from the admin actions' answers: plain values a template formats.

Pure: AdminService messages in, dicts of Python values out (datetimes stay datetimes, so
the template formats them per language and zone; absent values are None, not proto
defaults). Wording and colours live in the templates.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from seatclient.v1 import admin_pb2, types_pb2

# The reason the seeds prefill when disconnecting a session (and `seatctl evict`'s default).
DEFAULT_REASON = "Connection limit exceeded"


def when(ts: Timestamp) -> datetime:
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, UTC)


def sessions(r: admin_pb2.ListSessionsResponse) -> dict[str, Any]:
    return {
        "queue": queue(r),
        "cap": r.seat_cap if r.HasField("seat_cap") else None,
        "in_use": r.in_use,
        "sessions": [
            {
                "id": s.id,
                "user_code": s.user_code,
                "user_name": s.user_name,
                "hostname": s.hostname,
                "ip": s.ip,
                "client_version": s.client_version,
                "started_at": when(s.started_at),
                "started_epoch": s.started_at.seconds,
                "duration_seconds": s.duration.seconds,
                "last_seen_at": when(s.last_seen_at),
                "attached": s.attached,
            }
            for s in r.sessions
        ],
    }


def queue(r: admin_pb2.ListSessionsResponse) -> list[dict[str, Any]]:
    """The waiters in the order they will be served, with their positions (1 = next) and
    since when they wait."""
    return [
        {
            "position": w.position,
            "user_code": w.user_code,
            "user_name": w.user_name,
            "hostname": w.hostname,
            "ip": w.ip,
            "queued_at": when(w.queued_at),
            "queued_epoch": w.queued_at.seconds,
            "waited_seconds": w.waited.seconds,
        }
        for w in r.queue
    ]


def _detail(stored: dict[str, Any], kind: str) -> str:
    if stored.get("repeated"):
        return (
            f"{stored.get('reason') or kind} (x{stored['repeated']}, since {stored.get('since')})"
        )
    if stored.get("reason"):
        return str(stored["reason"])
    for key in ("serial", "detail"):
        if stored.get(key):
            return str(stored[key])
    if kind == "active_seats_changed":
        return f"{stored.get('old')} → {stored.get('new')}"
    return ""


def journal_entry(e: admin_pb2.JournalEntry) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(e.json) if e.json else {}
    by = e.actor
    if stored.get("claimed_user"):
        by = f"{e.actor} ({stored['claimed_user']}, claimed)"
    return {
        "seq": e.seq,
        "at": when(e.at),
        "kind": e.kind,
        "session_id": e.session_id or None,
        "user_code": e.user_code or None,
        "by": by,
        "detail": _detail(stored, e.kind),
    }


def history_entry(e: types_pb2.LicenceHistoryEntry) -> dict[str, Any]:
    return {
        "at": when(e.at),
        "serial": e.serial or None,
        "source": e.source,
        "by": e.by,
        "previous_serial": e.previous_serial or None,
    }


def token(t: admin_pb2.TokenInfo) -> dict[str, Any]:
    return {
        "name": t.name,
        "role": t.role,
        "created_by": t.created_by,
        "created_at": when(t.created_at) if t.HasField("created_at") else None,
        "revoked": t.HasField("revoked_at"),
    }


def day_bounds(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """A journal period picked as days: from the start of `since` to the end of `until`, UTC."""
    lo = datetime.combine(since, datetime.min.time(), UTC) if since else None
    hi = datetime.combine(until, datetime.max.time(), UTC) if until else None
    return lo, hi


def quote(r: admin_pb2.OrderSeatsResponse) -> dict[str, Any]:
    """An order's prorated price; amounts are decimal strings from the vendor."""
    return {
        "order_id": r.order_id,
        "seats": r.seats,
        "days_left": r.days_left,
        "amount_excl_vat": Decimal(r.amount_excl_vat or "0"),
        "vat": Decimal(r.vat or "0"),
        "amount_incl_vat": Decimal(r.amount_incl_vat or "0"),
        "currency": r.currency or "EUR",
        "status": r.status,
    }
