"""The vendor's books on a real LMDB, with a fake clock: every order issues the right licence."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import lmdb
import pytest

from seatd.cloud.ledger import Ledger, LedgerError
from seatd.cloud.pricing import PriceTable, money
from seatd.entitlement import Edition, Licensee, Mode, Period
from seatd.errors import StateError
from seatd.licence.signing import verify
from tests.fakes import FakeClock
from tests.licences import VENDOR, trusted
from tests.tables import zero_pages_holding

BASE = "82520020025896075"
NEW_BASE = "99999999999999999"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=datetime(2026, 3, 1, 10, 0, tzinfo=UTC))


@pytest.fixture
def ledger(tmp_path: Path, clock: FakeClock) -> Iterator[Ledger]:
    books = Ledger(tmp_path, VENDOR, PriceTable.load(), clock, latest_client_version="15.3")
    yield books
    books.close()


def subscribe(ledger: Ledger, **kw: object) -> dict[str, object]:
    args: dict[str, object] = {
        "base_id": BASE,
        "licensee": Licensee("ANYWAY SARL", country="FRA"),
        "edition": Edition.ENTERPRISE,
        "mode": Mode.LOCAL,
        "period": Period.ANNUAL,
        "seats": 1,
        "country": "FR",
    } | kw
    return ledger.subscribe(**args)  # type: ignore[arg-type]


def current(ledger: Ledger, base_id: str = BASE) -> object:
    return verify(ledger.current_licence(base_id), trusted(VENDOR))


def test_paid_subscription_issues_licence_and_invoice(ledger: Ledger) -> None:
    """A new subscription pays 122.40; once paid, a signed licence and an invoice exist."""
    order = subscribe(ledger)
    assert (order["status"], order["amount_incl_vat"]) == ("pending", "122.40")
    assert ledger.current_licence(BASE) == ""
    paid = ledger.mark_paid(str(order["order_id"]), reference="cheque 42")
    assert paid["invoice_number"] == "INV-2026-00001"
    lic = current(ledger)
    assert (lic.seats, lic.valid_from, lic.valid_until) == (  # type: ignore[attr-defined]
        1,
        date(2026, 3, 1),
        date(2027, 3, 1),
    )
    assert lic.latest_client_version == "15.3"  # type: ignore[attr-defined]


def test_marking_paid_twice_changes_nothing(ledger: Ledger) -> None:
    """A payment reported twice issues one licence and one invoice."""
    order_id = str(subscribe(ledger)["order_id"])
    first = ledger.mark_paid(order_id)
    assert ledger.mark_paid(order_id) == first
    assert len(ledger.licence_history(BASE)) == 1


def test_free_licence_needs_approval(ledger: Ledger) -> None:
    """An association's free licence waits for the vendor's approval, then costs nothing."""
    order = subscribe(ledger, free="association")
    assert order["status"] == "awaiting_approval"
    with pytest.raises(LedgerError, match="awaiting approval"):
        ledger.mark_paid(str(order["order_id"]))
    approved = ledger.approve_free(str(order["order_id"]))
    assert (approved["status"], approved["amount_incl_vat"]) == ("paid", "0.00")


def test_extra_seats_are_prorated_and_raise_purchased_seats(
    ledger: Ledger, clock: FakeClock
) -> None:
    """Half-way through the year, one more seat costs about half a year; paid, 2 seats."""
    ledger.mark_paid(str(subscribe(ledger)["order_id"]))
    clock.advance((datetime(2026, 9, 1, tzinfo=UTC) - clock.wall()).total_seconds())
    order = ledger.order_extra_seats(BASE, 1)
    assert order["days_left"] == 181
    assert order["amount_excl_vat"] == str(money(Decimal("102.00") * 181 / 365))  # 50.58
    ledger.mark_paid(str(order["order_id"]))
    lic = current(ledger)
    assert (lic.seats, lic.valid_until) == (2, date(2027, 3, 1))  # type: ignore[attr-defined]


def test_renewal_moves_the_renewal_date_by_a_period(ledger: Ledger) -> None:
    """A paid renewal is the next licence: one period from the old renewal date."""
    ledger.mark_paid(str(subscribe(ledger, period=Period.QUARTERLY)["order_id"]))
    ledger.mark_paid(str(ledger.renew(BASE)["order_id"]))
    lic = verify(ledger.next_licence(BASE), trusted(VENDOR))
    assert (lic.valid_from, lic.valid_until) == (date(2026, 6, 1), date(2026, 9, 1))


def test_early_renewal_leaves_the_licence_in_force_until_the_renewal_date(
    ledger: Ledger, clock: FakeClock
) -> None:
    """The sync's licence in force stays the current period until the renewal date, when the
    renewal becomes the one in force and there is no next one."""
    first = ledger.mark_paid(str(subscribe(ledger, period=Period.QUARTERLY)["order_id"]))
    renewal = ledger.mark_paid(str(ledger.renew(BASE)["order_id"]))
    assert current(ledger).serial == first["licence_serial"]  # type: ignore[attr-defined]
    upcoming = verify(ledger.next_licence(BASE), trusted(VENDOR))
    assert upcoming.serial == renewal["licence_serial"]
    clock.advance((datetime(2026, 6, 1, tzinfo=UTC) - clock.wall()).total_seconds())
    assert current(ledger).serial == renewal["licence_serial"]  # type: ignore[attr-defined]
    assert ledger.next_licence(BASE) == ""


def test_customer_may_stop_auto_renew(ledger: Ledger) -> None:
    """Auto-renew can be stopped at any time; the next licence says so."""
    ledger.mark_paid(str(subscribe(ledger)["order_id"]))
    assert ledger.set_auto_renew(BASE, False)["auto_renew"] is False
    ledger.mark_paid(str(ledger.renew(BASE)["order_id"]))
    assert verify(ledger.next_licence(BASE), trusted(VENDOR)).auto_renew is False


def test_transfer_credits_the_days_left_to_a_new_base(ledger: Ledger, clock: FakeClock) -> None:
    """The unused remainder moves to a new base id, same renewal date, at no charge."""
    ledger.mark_paid(str(subscribe(ledger, seats=2)["order_id"]))
    clock.advance((datetime(2026, 9, 1, tzinfo=UTC) - clock.wall()).total_seconds())
    order = ledger.transfer(BASE, NEW_BASE)
    assert (order["amount_incl_vat"], order["days_left"]) == ("0.00", 181)
    assert order["credit_excl_vat"] == str(money(Decimal("204.00") * 181 / 365))  # 101.16
    lic = current(ledger, NEW_BASE)
    assert (lic.base_id, lic.seats, lic.valid_until) == (  # type: ignore[attr-defined]
        NEW_BASE,
        2,
        date(2027, 3, 1),
    )
    assert ledger.subscription(BASE)["status"] == "transferred"  # type: ignore[index]
    with pytest.raises(LedgerError, match="no active subscription"):
        ledger.order_extra_seats(BASE, 1)


def test_standard_local_needs_no_subscription(ledger: Ledger) -> None:
    """Standard/Local is free for life: there is nothing to subscribe to."""
    with pytest.raises(LedgerError, match="free for life"):
        subscribe(ledger, edition=Edition.STANDARD, mode=Mode.LOCAL)


def test_unsubscribed_base_id_syncs_without_binding_anything(ledger: Ledger) -> None:
    """Before any subscription there is nothing to claim: no code needed, nothing bound."""
    ledger.authenticate(BASE, "s" * 32)
    ledger.authenticate(BASE, "t" * 32)
    assert ledger.audit_log(BASE) == []


def test_stranger_without_a_code_is_refused_for_a_subscribed_base(ledger: Ledger) -> None:
    """A subscribed base id refuses a sync with no registration code, saying what to do."""
    subscribe(ledger)
    with pytest.raises(LedgerError, match="seatctl licence register CODE") as refused:
        ledger.authenticate(BASE, "s" * 32)
    assert refused.value.code == "REGISTRATION_REQUIRED"


def test_wrong_registration_code_is_refused(ledger: Ledger) -> None:
    """A code that is not the one issued for the base id binds nothing."""
    subscribe(ledger)
    other = "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567"
    with pytest.raises(LedgerError, match="not the registration code") as refused:
        ledger.authenticate(BASE, "s" * 32, other)
    assert refused.value.code == "REGISTRATION_CODE_WRONG"
    with pytest.raises(LedgerError, match="not registered"):
        ledger.authenticate(BASE, "s" * 32)


def test_expired_registration_code_is_refused(ledger: Ledger, clock: FakeClock) -> None:
    """A code not used within its days is refused and says to ask for a new one."""
    code = str(subscribe(ledger)["registration_code"])
    clock.advance(30 * 86400)
    with pytest.raises(LedgerError, match="expired on 2026-03-31") as refused:
        ledger.authenticate(BASE, "s" * 32, code)
    assert refused.value.code == "REGISTRATION_CODE_EXPIRED"


def test_registration_code_works_once(ledger: Ledger) -> None:
    """The code binds the first secret (typed in any case or spacing); used again, refused."""
    code = str(subscribe(ledger)["registration_code"])
    ledger.authenticate(BASE, "s" * 32, code.lower().replace("-", " "))
    ledger.authenticate(BASE, "s" * 32)
    with pytest.raises(LedgerError, match="already used") as refused:
        ledger.authenticate(BASE, "t" * 32, code)
    assert refused.value.code == "REGISTRATION_CODE_USED"
    with pytest.raises(LedgerError, match="another installation"):
        ledger.authenticate(BASE, "t" * 32)


def test_reset_installation_lets_the_new_server_register(ledger: Ledger) -> None:
    """After a reset the old binding is gone; the new code registers the new server once."""
    first = str(subscribe(ledger)["registration_code"])
    ledger.authenticate(BASE, "s" * 32, first)
    fresh = str(ledger.reset_installation(BASE)["registration_code"])
    with pytest.raises(LedgerError, match="not the registration code"):
        ledger.authenticate(BASE, "t" * 32, first)
    ledger.authenticate(BASE, "t" * 32, fresh)
    with pytest.raises(LedgerError, match="another installation"):
        ledger.authenticate(BASE, "s" * 32)
    kinds = [e["kind"] for e in ledger.audit_log(BASE)]
    assert kinds == [
        "registration_code_issued",
        "installation_registered",
        "installation_reset",
        "registration_code_issued",
        "installation_registered",
    ]


def test_registration_codes_are_stored_hashed(ledger: Ledger) -> None:
    """The cloud's state never holds a registration code in the clear."""
    code = str(subscribe(ledger)["registration_code"])
    assert len(code.replace("-", "")) == 32
    with ledger.env.begin(db=ledger.codes) as txn:
        stored = b"".join(bytes(v) for _, v in txn.cursor())
    assert code.encode() not in stored and code.replace("-", "").encode() not in stored


def test_transfer_cancels_the_pending_orders_of_the_old_base(ledger: Ledger) -> None:
    """Orders not yet paid on the transferred subscription are cancelled and cannot be paid."""
    ledger.mark_paid(str(subscribe(ledger)["order_id"]))
    extra = ledger.order_extra_seats(BASE, 1)
    renewal = ledger.renew(BASE)
    ledger.transfer(BASE, NEW_BASE)
    for order in (extra, renewal):
        cancelled = ledger.order(str(order["order_id"]))
        assert cancelled["status"] == "cancelled"
        assert cancelled["cancel_reason"] == f"subscription transferred to {NEW_BASE}"
        with pytest.raises(LedgerError, match="cancelled") as refused:
            ledger.mark_paid(str(order["order_id"]))
        assert refused.value.code == "ORDER_CANCELLED"
    assert ledger.sync_answer(BASE).transferred_to == NEW_BASE
    assert ledger.sync_answer(BASE).licence == ""


def test_extra_seats_after_an_early_renewal_reach_both_periods(ledger: Ledger) -> None:
    """Seats bought once the next period is paid are in the licence in force and the next."""
    ledger.mark_paid(str(subscribe(ledger)["order_id"]))
    ledger.mark_paid(str(ledger.renew(BASE)["order_id"]))
    paid = ledger.mark_paid(str(ledger.order_extra_seats(BASE, 2)["order_id"]))
    in_force = current(ledger)
    upcoming = verify(ledger.next_licence(BASE), trusted(VENDOR))
    assert in_force.serial == paid["licence_serial"]  # type: ignore[attr-defined]
    assert (in_force.seats, in_force.valid_until) == (3, date(2027, 3, 1))  # type: ignore[attr-defined]
    assert (upcoming.seats, upcoming.valid_from) == (3, date(2027, 3, 1))


def test_a_damaged_cloud_ledger_is_refused_before_serving(tmp_path: Path, clock: FakeClock) -> None:
    """A zeroed page of the cloud's LMDB, which would abort the process at its first read, is
    refused when the ledger opens, with what is damaged and the way out."""
    Ledger(tmp_path, VENDOR, PriceTable.load(), clock).close()
    env = lmdb.open(str(tmp_path / "cloud.lmdb"), max_dbs=8)
    with env.begin(write=True) as txn:
        audit = env.open_db(b"audit", txn=txn)
        for n in range(3000):
            txn.put(f"{n:08}".encode(), f"entry {n}".encode() * 4, db=audit)
    env.close()
    zero_pages_holding(tmp_path / "cloud.lmdb" / "data.mdb", b"entry 1000")
    with pytest.raises(StateError, match=r"(?s)cloud ledger.*database 'audit'.*from a backup"):
        Ledger(tmp_path, VENDOR, PriceTable.load(), clock)
