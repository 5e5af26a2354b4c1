"""Domain values -> protobuf messages."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from seatclient.v1 import admin_pb2, types_pb2

from seatd.arbiter import Assessment
from seatd.capacity import Capacity
from seatd.entitlement import LicenceView
from seatd.model import Ending, Session
from seatd.policy import Policy

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(when: datetime) -> Timestamp:
    """`when` (naive: UTC) as a Timestamp; what `Timestamp.FromDatetime` gives, at a fifth of
    its cost (it goes through a time tuple and `calendar.timegm`; two per Acquire answer)."""
    since = (when if when.tzinfo is not None else when.replace(tzinfo=UTC)) - _EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1_000)


def duration(seconds: float) -> Duration:
    d = Duration()
    d.FromTimedelta(timedelta(seconds=seconds))
    return d


def session(
    s: Session, now: datetime, *, group: str = "", idle: float | None = None
) -> types_pb2.Session:
    """A session for display; `group` and `idle` for administrators only."""
    h = s.holder
    shown = types_pb2.Session(
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
        group=group,
    )
    if idle is not None:
        shown.idle.CopyFrom(duration(idle))
    return shown


def policy(
    p: Policy, assessment: Assessment, cap: int | None, in_use: int
) -> admin_pb2.GetPolicyResponse:
    """A policy and its count against the live sessions (`seatctl policy show`)."""
    shown = admin_pb2.GetPolicyResponse(
        takeover=p.takeover.value,
        max_per_user=p.max_per_user,
        idle=admin_pb2.IdlePolicy(
            reclaim_after=duration(p.idle.reclaim_after),
            warn_before=duration(p.idle.warn_before),
            only_when_waiting=p.idle.only_when_waiting,
        ),
        in_use=in_use,
        unused_reserve=assessment.unused_reserve,
        rules=p.rules,
    )
    for g in p.groups:
        group = shown.groups.add(
            name=g.name,
            users=sorted(g.users),
            hosts=g.hosts,
            networks=[str(n) for n in g.networks],
            reserve=g.reserve,
            exclude=g.exclude,
            priority=g.priority,
            in_use=assessment.in_use.get(g.name, 0),
        )
        if g.max is not None:
            group.max = g.max
    if cap is not None:
        shown.seat_cap = cap
    return shown


def ended(e: Ending) -> types_pb2.EndedSession:
    return types_pb2.EndedSession(
        session_id=e.session.id,
        kind=e.kind.value,  # type: ignore[arg-type]
        reason=e.reason,
        by=e.who,
        at=timestamp(e.at),
    )


def store_usage(room: Capacity) -> admin_pb2.StoreUsage:
    return admin_pb2.StoreUsage(
        used_bytes=room.used,
        ceiling_bytes=room.ceiling,
        used_ratio=room.ratio,
        warning=room.short_of_space,
        grants_refused=not room.grants_ok,
    )


def day(d: date) -> Timestamp:
    """A date as midnight UTC of that day."""
    return timestamp(datetime(d.year, d.month, d.day, tzinfo=UTC))


def licence(view: LicenceView) -> types_pb2.LicenceSummary:
    msg = types_pb2.LicenceSummary(
        edition=view.edition.value,  # type: ignore[arg-type]
        mode=view.mode.value,  # type: ignore[arg-type]
        period=view.period.value if view.period else 0,  # type: ignore[arg-type]
        status=view.status.value,  # type: ignore[arg-type]
        seats_purchased=view.seats_purchased,
        features=list(view.features),
        licensee=view.licensee.company if view.licensee else "",
        base_id=view.base_id,
        serial=view.serial,
        auto_renew=view.auto_renew,
        grace_days_left=view.grace_days_left,
        latest_client_version=view.latest_client_version,
        order_url=view.order_url,
        days_left=view.days_left or 0,
    )
    if view.seat_cap is not None:
        msg.seat_cap = view.seat_cap
    if view.valid_until is not None:
        msg.valid_until.CopyFrom(day(view.valid_until))
    return msg


def licence_detail(
    view: LicenceView, *, in_use: int, trusted_time: datetime, rolled_back: bool
) -> types_pb2.LicenceDetail:
    msg = types_pb2.LicenceDetail(
        summary=licence(view),
        in_use=in_use,
        trusted_time=timestamp(trusted_time),
        clock_rollback=rolled_back,
        note=view.note,
    )
    if view.licensee is not None:
        msg.licensee.CopyFrom(types_pb2.Licensee(**dataclasses.asdict(view.licensee)))
    if view.valid_from is not None:
        msg.valid_from.CopyFrom(day(view.valid_from))
    if view.issued_at is not None:
        msg.issued_at.CopyFrom(timestamp(view.issued_at))
    if view.transferred_at is not None:
        msg.transferred_to = view.transferred_to
        msg.transferred_at.CopyFrom(timestamp(view.transferred_at))
    return msg
