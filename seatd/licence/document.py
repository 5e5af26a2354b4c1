"""The licence payload: what the vendor signs, and its strict parsing.

Parsing never trusts the input: any byte string either becomes a `Licence` or raises
`LicenceRejected` with a precise reason. Unknown fields are ignored (a newer vendor may add
some); known fields must have the right type.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from seatclient.contract import LicenceReason

from seatd.entitlement import Edition, Licensee, Mode, Period
from seatd.errors import LicenceRejected

FORMAT = "seatd-licence/1"


@dataclass(frozen=True, slots=True)
class Licence:
    serial: str
    base_id: str
    licensee: Licensee
    edition: Edition
    mode: Mode
    period: Period
    seats: int
    valid_from: date
    valid_until: date
    issued_at: datetime
    auto_renew: bool = False
    features: tuple[str, ...] = field(default=())
    latest_client_version: str = ""
    order_url: str = ""
    # Serials this licence supersedes even though they were issued after it (the vendor's
    # way to take a licence back); empty for an ordinary licence.
    replaces: tuple[str, ...] = field(default=())

    @property
    def capped(self) -> bool:
        """Standard/Local is free for life with no cap; every other combination has one."""
        return not (self.edition is Edition.STANDARD and self.mode is Mode.LOCAL)

    def to_payload(self) -> dict[str, Any]:
        payload = {
            "format": FORMAT,
            "serial": self.serial,
            "base_id": self.base_id,
            "licensee": {
                "company": self.licensee.company,
                "contact": self.licensee.contact,
                "address": self.licensee.address,
                "postcode": self.licensee.postcode,
                "city": self.licensee.city,
                "country": self.licensee.country,
                "email": self.licensee.email,
            },
            "edition": self.edition.name,
            "mode": self.mode.name,
            "period": self.period.name,
            "seats": self.seats,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "issued_at": self.issued_at.isoformat().replace("+00:00", "Z"),
            "auto_renew": self.auto_renew,
            "features": list(self.features),
            "latest_client_version": self.latest_client_version,
            "order_url": self.order_url,
        }
        if self.replaces:
            # Only when set: licences without it sign exactly as before.
            payload["replaces"] = list(self.replaces)
        return payload


def _malformed(problem: str) -> LicenceRejected:
    return LicenceRejected(LicenceReason.MALFORMED, f"the licence payload is malformed: {problem}")


def _get(obj: dict[str, Any], key: str, kind: type, default: Any = None) -> Any:
    if key not in obj:
        if default is not None:
            return default
        raise _malformed(f"{key} is missing")
    value = obj[key]
    if kind is int and isinstance(value, bool):
        raise _malformed(f"{key} must be a whole number")
    if not isinstance(value, kind):
        raise _malformed(f"{key} must be a {kind.__name__}")
    return value


def _enum(obj: dict[str, Any], key: str, kind: type[enum.Enum]) -> Any:
    name = _get(obj, key, str)
    try:
        return kind[name]
    except KeyError:
        allowed = ", ".join(kind.__members__)
        raise _malformed(f"{key} must be one of {allowed}, got {name!r}") from None


def _date(obj: dict[str, Any], key: str) -> date:
    try:
        return date.fromisoformat(_get(obj, key, str))
    except ValueError:
        raise _malformed(f"{key} must be a date (YYYY-MM-DD)") from None


def parse_payload(raw: bytes) -> Licence:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _malformed("not JSON") from None
    if not isinstance(obj, dict):
        raise _malformed("not a JSON object")
    if obj.get("format") != FORMAT:
        raise _malformed(f"format must be {FORMAT!r}")
    who = _get(obj, "licensee", dict)
    try:
        issued_at = datetime.fromisoformat(_get(obj, "issued_at", str))
    except ValueError:
        raise _malformed("issued_at must be an ISO 8601 time") from None
    if issued_at.tzinfo is None:
        raise _malformed("issued_at must carry its UTC offset")
    features = _get(obj, "features", list, default=[])
    if not all(isinstance(f, str) for f in features):
        raise _malformed("features must be strings")
    replaces = _get(obj, "replaces", list, default=[])
    if not all(isinstance(r, str) for r in replaces):
        raise _malformed("replaces must be serials (strings)")
    seats = _get(obj, "seats", int)
    if not 1 <= seats <= 100_000:
        raise _malformed("seats must be between 1 and 100000")
    base_id = _get(obj, "base_id", str)
    if not (base_id.isdigit() and len(base_id) == 17):
        raise _malformed("base_id must be 17 digits")
    return Licence(
        serial=_get(obj, "serial", str),
        base_id=base_id,
        licensee=Licensee(
            **{
                k: _get(who, k, str, default="")
                for k in ("contact", "address", "postcode", "city", "country", "email")
            },
            company=_get(who, "company", str),
        ),
        edition=_enum(obj, "edition", Edition),
        mode=_enum(obj, "mode", Mode),
        period=_enum(obj, "period", Period),
        seats=seats,
        valid_from=_date(obj, "valid_from"),
        valid_until=_date(obj, "valid_until"),
        issued_at=issued_at.astimezone(UTC),
        auto_renew=_get(obj, "auto_renew", bool, default=False) is True,
        features=tuple(features),
        latest_client_version=_get(obj, "latest_client_version", str, default=""),
        order_url=_get(obj, "order_url", str, default=""),
        replaces=tuple(replaces),
    )
