"""Pricing and proration on the shipped sample price table."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from seatd.cloud.pricing import PriceTable, PricingError, add_months, period_start, prorate, quote
from seatd.entitlement import Edition, Mode, Period

TABLE = PriceTable.load()
D = Decimal


def q(**kw: object) -> object:
    args: dict[str, object] = {
        "edition": Edition.ENTERPRISE,
        "mode": Mode.LOCAL,
        "period": Period.ANNUAL,
        "seats": 1,
        "country": "FR",
    } | kw
    return quote(TABLE, **args)  # type: ignore[arg-type]


def test_the_reference_example() -> None:
    """Annual Enterprise, 1 connection at 8.50 a month: 102.00 excluding VAT, 122.40 with 20 %."""
    r = q()
    assert (r.price_per_seat_month, r.amount_excl_vat, r.vat, r.amount_incl_vat) == (
        D("8.50"),
        D("102.00"),
        D("20.40"),
        D("122.40"),
    )


@pytest.mark.parametrize(
    ("period", "per_month", "months"),
    [
        (Period.MONTHLY, D("10.00"), 1),
        (Period.QUARTERLY, D("9.50"), 3),
        (Period.ANNUAL, D("8.50"), 12),
    ],
)
def test_each_period(period: Period, per_month: Decimal, months: int) -> None:
    """Each period has its discount; one instalment covers its months; annual is cheapest."""
    r = q(period=period, seats=3)
    assert (r.price_per_seat_month, r.months) == (per_month, months)
    assert r.amount_excl_vat == per_month * 3 * months


@pytest.mark.parametrize(
    ("edition", "mode", "monthly"),
    [
        (Edition.STANDARD, Mode.LOCAL, D("0.00")),
        (Edition.STANDARD, Mode.CLOUD, D("5.00")),
        (Edition.ENTERPRISE, Mode.LOCAL, D("10.00")),
        (Edition.ENTERPRISE, Mode.CLOUD, D("14.00")),
    ],
)
def test_each_edition_and_mode(edition: Edition, mode: Mode, monthly: Decimal) -> None:
    """Each edition x mode has its own monthly price; Standard/Local is free."""
    assert q(edition=edition, mode=mode, period=Period.MONTHLY).price_per_seat_month == monthly


@pytest.mark.parametrize(
    ("country", "vat", "incl"),
    [
        ("FR", D("20.40"), D("122.40")),
        ("be", D("21.42"), D("123.42")),
        ("CH", D("8.26"), D("110.26")),
        ("US", D("0.00"), D("102.00")),
    ],
)
def test_vat_by_country(country: str, vat: Decimal, incl: Decimal) -> None:
    """VAT follows the buyer's country and is rounded half-up to the cent."""
    r = q(country=country)
    assert (r.vat, r.amount_incl_vat) == (vat, incl)


def test_unknown_country_is_refused() -> None:
    """A country with no VAT rate in the table is an error naming it."""
    with pytest.raises(PricingError, match="'XX'"):
        q(country="XX")


def test_promo_code() -> None:
    """A promo code takes its fraction off the price per connection."""
    r = q(promo="welcome10")
    assert (r.price_per_seat_month, r.amount_excl_vat, r.promo) == (
        D("7.65"),
        D("91.80"),
        "WELCOME10",
    )
    with pytest.raises(PricingError, match="unknown promo"):
        q(promo="NOPE")


def test_free_licence_for_an_approved_organisation() -> None:
    """An approved association pays nothing."""
    r = q(free="association")
    assert (r.amount_incl_vat, r.free) == (D("0.00"), "association")


def test_rounding_is_half_up_to_the_cent() -> None:
    """0.005 rounds up, as invoices expect (banker's rounding would go down)."""
    from seatd.cloud.pricing import money

    assert money(D("0.125")) == D("0.13") and money(D("2.675")) == D("2.68")


@pytest.mark.parametrize(
    ("d", "n", "expected"),
    [
        (date(2027, 3, 31), -1, date(2027, 2, 28)),
        (date(2028, 3, 31), -1, date(2028, 2, 29)),
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2027, 5, 15), -12, date(2026, 5, 15)),
        (date(2028, 2, 29), -12, date(2027, 2, 28)),
    ],
)
def test_months_in_the_calendar(d: date, n: int, expected: date) -> None:
    """Months move in the calendar and clamp to the month's last day (leap years included)."""
    assert add_months(d, n) == expected


def test_prorated_extra_seat_pays_the_days_left() -> None:
    """An extra annual seat bought with 183 of 365 days left pays 183/365 of a year."""
    p = prorate(
        TABLE,
        edition=Edition.ENTERPRISE,
        mode=Mode.LOCAL,
        period=Period.ANNUAL,
        seats=1,
        country="FR",
        renewal=date(2027, 1, 1),
        today=date(2026, 7, 2),
    )
    assert (p.days_left, p.period_days) == (183, 365)
    assert p.amount_excl_vat == D("51.14")
    assert p.amount_incl_vat == p.amount_excl_vat + p.vat


def test_proration_in_a_leap_year() -> None:
    """A year that contains 29 February has 366 days."""
    p = prorate(
        TABLE,
        edition=Edition.ENTERPRISE,
        mode=Mode.LOCAL,
        period=Period.ANNUAL,
        seats=2,
        country="FR",
        renewal=date(2028, 6, 1),
        today=date(2028, 3, 3),
    )
    assert (p.days_left, p.period_days) == (90, 366)


def test_proration_on_the_last_day_and_the_first() -> None:
    """On the renewal day nothing is left to pay; on the period's first day, all of it."""
    kw = {
        "edition": Edition.ENTERPRISE,
        "mode": Mode.LOCAL,
        "period": Period.MONTHLY,
        "seats": 1,
        "country": "FR",
        "renewal": date(2027, 3, 31),
    }
    assert prorate(TABLE, today=date(2027, 3, 31), **kw).amount_excl_vat == D("0.00")  # type: ignore[arg-type]
    first = prorate(TABLE, today=period_start(date(2027, 3, 31), Period.MONTHLY), **kw)  # type: ignore[arg-type]
    assert (first.days_left, first.period_days, first.amount_excl_vat) == (31, 31, D("10.00"))
