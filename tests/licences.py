"""Licences for tests, made by the real issuing code with throwaway keys."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from seatd.entitlement import Edition, Licensee, Mode, Period
from seatd.licence.document import Licence
from seatd.licence.signing import SigningKey, TrustedKey, generate, sign

BASE_ID = "82520020025896075"


def licence(**changes: Any) -> Licence:
    base = Licence(
        serial="L-TEST-1",
        base_id=BASE_ID,
        licensee=Licensee(
            "ANYWAY SARL",
            "Lara LEUZE",
            "83 rue de la Paix",
            "75008",
            "PARIS",
            "FRA",
            "contact@anyway.fr",
        ),
        edition=Edition.ENTERPRISE,
        mode=Mode.LOCAL,
        period=Period.ANNUAL,
        seats=2,
        valid_from=date(2026, 1, 1),
        valid_until=date(2026, 12, 31),
        issued_at=datetime(2026, 1, 1, 8, 0, tzinfo=UTC),
        features=("stock", "supplier-accounting"),
    )
    return replace(base, **changes)


def trusted(*keys: SigningKey) -> dict[str, TrustedKey]:
    return {k.kid: TrustedKey(k.kid, k.private.public_key()) for k in keys}


VENDOR = generate("vendor-a")


def signed(**changes: Any) -> str:
    return sign(licence(**changes), VENDOR)
