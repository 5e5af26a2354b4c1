"""Prices, quotes and prorated extra seats. Pure: money is Decimal, rounded half-up to the cent.

A quote gives, per instalment, the price per connection per month (after the period discount
and any promo code), the amount excluding VAT, the VAT and the amount including VAT. Extra
seats bought mid-period pay only for the days left until the renewal date, counted in the
subscription's own calendar (a monthly subscription renewing on the 31st started on the last
day of the month before).
"""

from __future__ import annotations

import calendar
import tomllib
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from seatd.entitlement import Edition, Mode, Period

CENT = Decimal("0.01")
MONTHS = {Period.MONTHLY: 1, Period.QUARTERLY: 3, Period.ANNUAL: 12}


class PricingError(ValueError):
    """A price cannot be given: unknown country, unknown promo code, bad table."""


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _decimal(where: str, value: Any) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise PricingError(f"price table: {where} is not a number: {value!r}") from None
    if d < 0:
        raise PricingError(f"price table: {where} must not be negative")
    return d


@dataclass(frozen=True, slots=True)
class PriceTable:
    currency: str
    monthly: dict[tuple[Edition, Mode], Decimal]
    discount: dict[Period, Decimal]
    vat: dict[str, Decimal]
    promo: dict[str, Decimal]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> PriceTable:
        try:
            monthly = {
                (Edition[e], Mode[m]): _decimal(f"monthly.{e}.{m}", price)
                for e, modes in data["monthly"].items()
                for m, price in modes.items()
            }
            discount = {
                Period[p]: _decimal(f"discount.{p}", v) for p, v in data["discount"].items()
            }
            vat = {c.upper(): _decimal(f"vat.{c}", v) for c, v in data["vat"].items()}
            promo = {c.upper(): _decimal(f"promo.{c}", v) for c, v in data.get("promo", {}).items()}
        except (KeyError, AttributeError) as exc:
            raise PricingError(f"price table: missing or unknown entry {exc}") from None
        missing = [f"{e.name}.{m.name}" for e in Edition for m in Mode if (e, m) not in monthly]
        missing += [p.name for p in Period if p not in discount]
        if missing:
            raise PricingError(f"price table: no price or discount for {', '.join(missing)}")
        return cls(str(data.get("currency", "EUR")), monthly, discount, vat, promo)

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """The table in `path`, or the shipped sample table."""
        if path is None:
            text = resources.files("seatd.cloud").joinpath("prices.toml").read_text()
        else:
            text = path.read_text()
        try:
            return cls.parse(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise PricingError(f"price table {path or 'sample'} is not valid TOML: {exc}") from None

    def vat_rate(self, country: str) -> Decimal:
        rate = self.vat.get(country.upper())
        if rate is None:
            known = ", ".join(sorted(self.vat))
            raise PricingError(f"no VAT rate for country {country!r}; known: {known}")
        return rate

    def seat_month(self, edition: Edition, mode: Mode, period: Period, promo: str = "") -> Decimal:
        """Price per connection per month after the period discount and the promo code."""
        price = self.monthly[(edition, mode)] * (1 - self.discount[period])
        if promo:
            off = self.promo.get(promo.upper())
            if off is None:
                raise PricingError(f"unknown promo code {promo!r}")
            price *= 1 - off
        return money(price)


@dataclass(frozen=True, slots=True)
class Quote:
    """One instalment."""

    edition: Edition
    mode: Mode
    period: Period
    seats: int
    country: str
    currency: str
    price_per_seat_month: Decimal
    months: int
    amount_excl_vat: Decimal
    vat_rate: Decimal
    vat: Decimal
    amount_incl_vat: Decimal
    promo: str = ""
    free: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "edition": self.edition.name,
            "mode": self.mode.name,
            "period": self.period.name,
            "seats": self.seats,
            "country": self.country,
            "currency": self.currency,
            "months": self.months,
            "price_per_seat_month": str(self.price_per_seat_month),
            "amount_excl_vat": str(self.amount_excl_vat),
            "vat_rate": str(self.vat_rate),
            "vat": str(self.vat),
            "amount_incl_vat": str(self.amount_incl_vat),
            "promo": self.promo,
            "free": self.free,
        }


def _amounts(excl: Decimal, rate: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    excl = money(excl)
    vat = money(excl * rate / 100)
    return excl, vat, excl + vat


def quote(
    table: PriceTable,
    *,
    edition: Edition,
    mode: Mode,
    period: Period,
    seats: int,
    country: str,
    promo: str = "",
    free: str = "",
) -> Quote:
    """The price of one instalment. `free` names an approved free-licence reason."""
    if seats < 1:
        raise PricingError("seats must be at least 1")
    rate = table.vat_rate(country)
    per_month = Decimal(0) if free else table.seat_month(edition, mode, period, promo)
    months = MONTHS[period]
    excl, vat, incl = _amounts(per_month * seats * months, rate)
    return Quote(
        edition,
        mode,
        period,
        seats,
        country.upper(),
        table.currency,
        per_month,
        months,
        excl,
        rate,
        vat,
        incl,
        promo.upper(),
        free,
    )


def add_months(d: date, months: int) -> date:
    """`d` moved by whole months, clamped to the end of the month (31 Mar - 1 = 28/29 Feb)."""
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(d.day, last))


def period_start(renewal: date, period: Period) -> date:
    """The first day of the period that ends on `renewal`."""
    return add_months(renewal, -MONTHS[period])


@dataclass(frozen=True, slots=True)
class Prorated:
    """Extra seats until the renewal date: only the days left are paid."""

    seats: int
    days_left: int
    period_days: int
    full: Quote
    amount_excl_vat: Decimal
    vat: Decimal
    amount_incl_vat: Decimal

    def as_json(self) -> dict[str, Any]:
        return {
            "seats": self.seats,
            "days_left": self.days_left,
            "period_days": self.period_days,
            "price_per_seat_month": str(self.full.price_per_seat_month),
            "amount_excl_vat": str(self.amount_excl_vat),
            "vat": str(self.vat),
            "amount_incl_vat": str(self.amount_incl_vat),
            "currency": self.full.currency,
        }


def prorate(
    table: PriceTable,
    *,
    edition: Edition,
    mode: Mode,
    period: Period,
    seats: int,
    country: str,
    renewal: date,
    today: date,
    promo: str = "",
) -> Prorated:
    """The price of `seats` more from `today` to `renewal`."""
    full = quote(
        table, edition=edition, mode=mode, period=period, seats=seats, country=country, promo=promo
    )
    start = period_start(renewal, period)
    period_days = (renewal - start).days
    days_left = max(0, min(period_days, (renewal - today).days))
    share = full.price_per_seat_month * full.months * seats * days_left / period_days
    excl, vat, incl = _amounts(share, full.vat_rate)
    return Prorated(seats, days_left, period_days, full, excl, vat, incl)
