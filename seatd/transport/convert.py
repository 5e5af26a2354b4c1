"""Domain values -> protobuf messages."""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from seatclient.v1 import types_pb2

from seatd.entitlement import LicenceView
from seatd.model import Ending, Session


def timestamp(when: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(when)
    return ts


def duration(seconds: float) -> Duration:
    d = Duration()
    d.FromTimedelta(timedelta(seconds=seconds))
    return d


def session(s: Session, now: datetime) -> types_pb2.Session:
    h = s.holder
    return types_pb2.Session(
        id=s.id,
        user_code=h.user_code,
        user_name=h.user_name,
        hostname=h.hostname,
        ip=h.ip,
        client_version=h.client_version,
        started_at=timestamp(s.started_at),
        last_seen_at=timestamp(s.last_seen_at),
        duration=duration(max(0.0, (now - s.started_at).total_seconds())),
        attached=s.attached,
    )


def ended(e: Ending) -> types_pb2.EndedSession:
    return types_pb2.EndedSession(
        session_id=e.session.id,
        kind=e.kind.value,  # type: ignore[arg-type]
        reason=e.reason,
        by=e.by,
        at=timestamp(e.at),
    )


def licence(view: LicenceView) -> types_pb2.LicenceSummary:
    msg = types_pb2.LicenceSummary(
        edition=view.edition.value,  # type: ignore[arg-type]
        mode=view.mode.value,  # type: ignore[arg-type]
        status=view.status.value,  # type: ignore[arg-type]
        seats_purchased=view.seats_purchased,
        features=list(view.features),
        licensee=view.licensee,
    )
    if view.seat_cap is not None:
        msg.seat_cap = view.seat_cap
    if view.valid_until is not None:
        msg.valid_until.CopyFrom(timestamp(view.valid_until))
    return msg
