"""The licence in force as plain values: what `seatctl licence show --json` prints and what
the console's licence screen shows, read from one AdminService `LicenceDetail` message.

Pure: the message in, a dict out. Times stay `datetime` (UTC) and dates `date`, so the console
formats them per language and zone and the CLI as ISO text; absent values are None, not
protobuf defaults (a free licence has no period, no purchased seats, no renewal date).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from seatclient.v1 import types_pb2


def _when(ts: Timestamp) -> datetime:
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, UTC)


def _name(enum_type: Any, value: int, prefix: str) -> str:
    return str(enum_type.Name(value)).removeprefix(prefix).lower()


def fields(d: types_pb2.LicenceDetail) -> dict[str, Any]:
    s = d.summary
    has = bool(s.serial)
    return {
        "base_id": s.base_id,
        "status": _name(types_pb2.LicenceStatus, s.status, "LICENCE_STATUS_"),
        "edition": _name(types_pb2.Edition, s.edition, "EDITION_"),
        "mode": _name(types_pb2.Mode, s.mode, "MODE_"),
        "period": _name(types_pb2.Period, s.period, "PERIOD_") if has else None,
        "seats_purchased": s.seats_purchased if has else None,
        "seats_active": s.seat_cap if s.HasField("seat_cap") else None,
        "in_use": d.in_use,
        "valid_until": _when(s.valid_until).date() if has else None,
        "days_left": s.days_left if has else None,
        "grace_days_left": s.grace_days_left,
        "auto_renew": s.auto_renew,
        "order_url": s.order_url or None,
        "features": list(s.features),
        "serial": s.serial or None,
        "licensee": {
            "company": d.licensee.company,
            "contact": d.licensee.contact,
            "address": d.licensee.address,
            "postcode": d.licensee.postcode,
            "city": d.licensee.city,
            "country": d.licensee.country,
            "email": d.licensee.email,
        },
        "trusted_time": _when(d.trusted_time),
        "clock_rollback": d.clock_rollback,
        "note": d.note,
        "cloud_url": d.cloud_url or None,
        "last_sync": _when(d.last_sync) if d.HasField("last_sync") else None,
        "failed_syncs": d.failed_syncs,
        "next_sync": _when(d.next_sync) if d.HasField("next_sync") else None,
        "last_sync_error": d.last_sync_error or None,
        "latest_client_version": d.latest_client_version or None,
        "transferred_to": d.transferred_to or None,
        "transferred_at": _when(d.transferred_at) if d.transferred_to else None,
        "next_serial": d.next_serial or None,
        "next_valid_from": _when(d.next_valid_from).date() if d.next_serial else None,
    }


def place(lic: dict[str, Any]) -> str:
    """The licensee's contact and address on one line (the company aside)."""
    who = lic["licensee"]
    parts = (
        who["contact"],
        who["address"],
        f"{who['postcode']} {who['city']}".strip(),
        who["country"],
        who["email"],
    )
    return ", ".join(p for p in parts if p)
