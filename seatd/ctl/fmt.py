"""How seatctl shows times, durations and sessions, in tables and in JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from seatclient.v1 import admin_pb2, types_pb2


def dt(ts: Any) -> datetime:
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, UTC)


def iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z")


def spaced(iso: str) -> str:
    """An ISO time for a table: a space before the time, so a narrow column wraps it there."""
    return iso.replace("T", " ", 1)


def clock(seconds: float) -> str:
    """A duration as h:mm:ss, short enough for a table column."""
    h, rem = divmod(int(seconds), 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}"


def hms(seconds: float) -> str:
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h} h {m:02d} m {s:02d} s" if h else f"{m:02d} m {s:02d} s"


def session_json(s: types_pb2.Session) -> dict[str, Any]:
    return {
        "id": s.id,
        "user_code": s.user_code,
        "user_name": s.user_name,
        "hostname": s.hostname,
        "ip": s.ip,
        "client_version": s.client_version,
        "started_at": iso(dt(s.started_at)),
        "duration_seconds": int(s.duration.seconds),
        "last_seen_at": iso(dt(s.last_seen_at)),
        "attached": s.attached,
        # The seat policy's group ("" for none), and the idle time its workstation reports
        # (null when it reports none).
        "group": s.group,
        "idle_seconds": int(s.idle.seconds) if s.HasField("idle") else None,
    }


def queued_json(w: admin_pb2.QueuedAcquire) -> dict[str, Any]:
    """One workstation waiting for a seat: what the web console's queue shows."""
    return {
        "position": w.position,
        "user_code": w.user_code,
        "user_name": w.user_name,
        "hostname": w.hostname,
        "ip": w.ip,
        "client_version": w.client_version,
        "queued_at": iso(dt(w.queued_at)),
        "waited_seconds": int(w.waited.seconds),
    }
