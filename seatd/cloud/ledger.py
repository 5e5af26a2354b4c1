"""The vendor's books, per base id, in the cloud's own LMDB: subscriptions, orders, invoices,
issued licences and the daemons' installation secrets.

Every operation is one write transaction, so `seatd-cloud serve` and the vendor's admin
commands (`seatd-cloud subscribe`, `mark-paid`, ...) can work on the same state directory at
the same time (LMDB is safe across processes). A paid order issues a new signed licence at
once, through the same code as `seatd-vendor issue`.

A sync answers with the licence in force today (the issued licence with the latest start
that has begun, the latest issued among those) and, when a later period is already paid,
the next one (the earliest start still to come), so a renewal paid early never replaces the
period in force before its day.

Registration: a daemon's installation secret is bound to its base id only with a one-time
registration code the vendor hands the customer (printed by `subscribe`, `registration-code`
and `reset-installation`): 160 random bits, stored hashed, expiring, used once. Until a
base id has a subscription (or a code) there is nothing to protect and a sync is answered
without binding anything. Binding, resetting and issuing codes are recorded in the cloud's
own audit log.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import lmdb

from seatd import filemodes, integrity
from seatd.clock import Clock
from seatd.cloud.pricing import MONTHS, PriceTable, Prorated, add_months, prorate, quote
from seatd.entitlement import Edition, Licensee, Mode, Period
from seatd.errors import LicenceRejected, StateError, StoreDamaged
from seatd.journal import canonical
from seatd.licence.document import Licence
from seatd.licence.signing import SigningKey, TrustedKey, sign, time_message, verify

FREE_REASONS = ("association", "school", "new-business")
# Days a registration code may wait before it is used.
CODE_DAYS = 30


class LedgerError(ValueError):
    """A vendor or daemon request the books cannot honour; the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class SyncAnswer:
    licence: str = ""
    next_licence: str = ""
    transferred_to: str = ""
    transferred_at: datetime | None = None


class Ledger:
    def __init__(
        self,
        state_dir: Path,
        key: SigningKey | None,
        prices: PriceTable,
        clock: Clock,
        latest_client_version: str = "",
    ) -> None:
        # Private like the daemon's state (seatd.filemodes): LMDB would create its environment
        # directory with the file mode it is given, and both with the umask's leave.
        env_dir = filemodes.private_dir(state_dir / "cloud.lmdb")
        if (env_dir / "data.mdb").exists():
            # As the daemon's store is: LMDB aborts the process on a damaged page, and only
            # at the first read of it, so every page is read once in a child before serving.
            try:
                integrity.check_pages(env_dir)
            except StoreDamaged as exc:
                raise StateError(
                    f"the cloud ledger in {state_dir} is damaged: {exc}; restore the state "
                    "directory from a backup"
                ) from None
        self.env = lmdb.open(str(env_dir), max_dbs=8, map_size=1 << 30, mode=filemodes.PRIVATE_FILE)
        self.subs = self.env.open_db(b"subscriptions")
        self.orders = self.env.open_db(b"orders")
        self.licences = self.env.open_db(b"licences")
        self.installs = self.env.open_db(b"installations")
        self.codes = self.env.open_db(b"registration_codes")
        self.audit = self.env.open_db(b"audit")
        self.meta = self.env.open_db(b"meta")
        self.key = key
        self.prices = prices
        self.clock = clock
        self.latest_client_version = latest_client_version

    def close(self) -> None:
        self.env.close()

    # -- reads ---------------------------------------------------------------------------------

    def _get(self, txn: lmdb.Transaction, db: Any, key: str) -> dict[str, Any] | None:
        raw = txn.get(key.encode(), db=db)
        return json.loads(bytes(raw)) if raw is not None else None

    def subscription(self, base_id: str) -> dict[str, Any] | None:
        with self.env.begin() as txn:
            return self._get(txn, self.subs, base_id)

    def subscriptions(self) -> list[dict[str, Any]]:
        with self.env.begin(db=self.subs) as txn:
            return [json.loads(v) for _, v in txn.cursor()]

    def order(self, order_id: str) -> dict[str, Any]:
        with self.env.begin() as txn:
            found = self._get(txn, self.orders, order_id)
        if found is None:
            raise LedgerError("ORDER_NOT_FOUND", f"no order {order_id}")
        return found

    def list_orders(self, base_id: str | None = None) -> list[dict[str, Any]]:
        with self.env.begin(db=self.orders) as txn:
            found = [json.loads(bytes(v)) for _, v in txn.cursor()]
        return [o for o in found if base_id is None or o["base_id"] == base_id]

    def licence_history(self, base_id: str) -> list[dict[str, Any]]:
        with self.env.begin() as txn:
            return self._history(txn, base_id)

    def _history(self, txn: lmdb.Transaction, base_id: str) -> list[dict[str, Any]]:
        prefix = f"{base_id}/".encode()
        cursor = txn.cursor(db=self.licences)
        out = []
        if cursor.set_range(prefix):
            for k, v in cursor:
                if not bytes(k).startswith(prefix):
                    break
                out.append(json.loads(bytes(v)))
        return out

    # -- the vendor's operations -------------------------------------------------------------

    def _counter(self, txn: lmdb.Transaction, name: str) -> int:
        n = int(txn.get(name.encode(), db=self.meta) or b"0") + 1
        txn.put(name.encode(), str(n).encode(), db=self.meta)
        return n

    def _put(self, txn: lmdb.Transaction, db: Any, key: str, value: dict[str, Any]) -> None:
        txn.put(key.encode(), canonical(value), db=db)

    def subscribe(
        self,
        *,
        base_id: str,
        licensee: Licensee,
        edition: Edition,
        mode: Mode,
        period: Period,
        seats: int,
        country: str,
        auto_renew: bool = True,
        promo: str = "",
        free: str = "",
    ) -> dict[str, Any]:
        """Open a subscription for a base id with its first order (pending until paid)."""
        if not (base_id.isdigit() and len(base_id) == 17):
            raise LedgerError("BAD_BASE_ID", "a base id is 17 digits (seatctl licence show)")
        if edition is Edition.STANDARD and mode is Mode.LOCAL:
            raise LedgerError("FREE_EDITION", "Standard/Local is free for life: no subscription")
        if free and free not in FREE_REASONS:
            raise LedgerError("BAD_FREE_REASON", f"free licences are for {', '.join(FREE_REASONS)}")
        q = quote(
            self.prices,
            edition=edition,
            mode=mode,
            period=period,
            seats=seats,
            country=country,
            promo=promo,
            free=free,
        )
        with self.env.begin(write=True) as txn:
            if self._get(txn, self.subs, base_id) is not None:
                raise LedgerError("EXISTS", f"base id {base_id} already has a subscription")
            sub = {
                "base_id": base_id,
                "licensee": dataclasses.asdict(licensee),
                "edition": edition.name,
                "mode": mode.name,
                "period": period.name,
                "seats": 0,
                "country": country.upper(),
                "auto_renew": auto_renew,
                "status": "pending",
                "renewal": "",
                "valid_from": "",
                "free": free,
                "promo": promo.upper(),
            }
            self._put(txn, self.subs, base_id, sub)
            order = self._new_order(
                txn,
                base_id,
                "new",
                seats,
                q.amount_excl_vat,
                q.vat,
                q.amount_incl_vat,
                0,
                "awaiting_approval" if free else "pending",
            )
            code = self._new_code(txn, base_id, "subscribe")
        # The code is shown once, never stored in the clear.
        return order | code

    def _new_order(
        self,
        txn: lmdb.Transaction,
        base_id: str,
        kind: str,
        seats: int,
        excl: Decimal,
        vat: Decimal,
        incl: Decimal,
        days_left: int,
        status: str,
    ) -> dict[str, Any]:
        n = self._counter(txn, "orders")
        order: dict[str, Any] = {
            "order_id": f"O-{n:06d}",
            "base_id": base_id,
            "kind": kind,
            "seats": seats,
            "days_left": days_left,
            "amount_excl_vat": str(excl),
            "vat": str(vat),
            "amount_incl_vat": str(incl),
            "currency": self.prices.currency,
            "status": status,
            "created_at": _iso(self.clock.wall()),
            "invoice_number": "",
            "licence_serial": "",
        }
        self._put(txn, self.orders, order["order_id"], order)
        return order

    def quote_extra_seats(self, base_id: str, seats: int) -> dict[str, Any]:
        """What `order_extra_seats` would ask, recording nothing."""
        p = self._extra_seats_price(base_id, seats)
        return {
            "order_id": "",
            "base_id": base_id,
            "kind": "extra_seats",
            "seats": seats,
            "days_left": p.days_left,
            "amount_excl_vat": str(p.amount_excl_vat),
            "vat": str(p.vat),
            "amount_incl_vat": str(p.amount_incl_vat),
            "currency": self.prices.currency,
            "status": "quote",
        }

    def _extra_seats_price(self, base_id: str, seats: int) -> Prorated:
        sub = self._active(base_id)
        return prorate(
            self.prices,
            edition=Edition[sub["edition"]],
            mode=Mode[sub["mode"]],
            period=Period[sub["period"]],
            seats=seats,
            country=sub["country"],
            renewal=date.fromisoformat(sub["renewal"]),
            today=self.clock.wall().date(),
            promo=sub["promo"],
        )

    def order_extra_seats(self, base_id: str, seats: int) -> dict[str, Any]:
        """Extra seats until the renewal date: only the days left are paid."""
        p = self._extra_seats_price(base_id, seats)
        with self.env.begin(write=True) as txn:
            return self._new_order(
                txn,
                base_id,
                "extra_seats",
                seats,
                p.amount_excl_vat,
                p.vat,
                p.amount_incl_vat,
                p.days_left,
                "pending",
            )

    def renew(self, base_id: str) -> dict[str, Any]:
        """The order for the next period, at the current seats."""
        sub = self._active(base_id)
        q = quote(
            self.prices,
            edition=Edition[sub["edition"]],
            mode=Mode[sub["mode"]],
            period=Period[sub["period"]],
            seats=sub["seats"],
            country=sub["country"],
            promo=sub["promo"],
            free=sub["free"],
        )
        with self.env.begin(write=True) as txn:
            return self._new_order(
                txn,
                base_id,
                "renewal",
                sub["seats"],
                q.amount_excl_vat,
                q.vat,
                q.amount_incl_vat,
                0,
                "pending",
            )

    def set_auto_renew(self, base_id: str, on: bool) -> dict[str, Any]:
        """The customer may stop (or restart) automatic renewal at any time."""
        with self.env.begin(write=True) as txn:
            sub = self._get(txn, self.subs, base_id)
            if sub is None:
                raise LedgerError("NO_SUBSCRIPTION", f"base id {base_id} has no subscription")
            sub["auto_renew"] = on
            self._put(txn, self.subs, base_id, sub)
        return sub

    def _active(self, base_id: str) -> dict[str, Any]:
        sub = self.subscription(base_id)
        if sub is None or sub["status"] != "active":
            raise LedgerError("NO_SUBSCRIPTION", f"base id {base_id} has no active subscription")
        return sub

    def transfer(self, from_base_id: str, to_base_id: str) -> dict[str, Any]:
        """Move a subscription's unused remainder to a new base id (a migrated database).

        The new base id gets the same terms and renewal date: the days left are credited, not
        paid again. The credit's value is recorded on a zero-amount "transfer" order, and a
        licence for the new base id is issued at once.
        """
        sub = self._active(from_base_id)
        if not (to_base_id.isdigit() and len(to_base_id) == 17):
            raise LedgerError("BAD_BASE_ID", "a base id is 17 digits (seatctl licence show)")
        credit = prorate(
            self.prices,
            edition=Edition[sub["edition"]],
            mode=Mode[sub["mode"]],
            period=Period[sub["period"]],
            seats=sub["seats"],
            country=sub["country"],
            renewal=date.fromisoformat(sub["renewal"]),
            today=self.clock.wall().date(),
            promo=sub["promo"],
        )
        with self.env.begin(write=True) as txn:
            if self._get(txn, self.subs, to_base_id) is not None:
                raise LedgerError("EXISTS", f"base id {to_base_id} already has a subscription")
            moved = sub | {
                "base_id": to_base_id,
                "valid_from": self.clock.wall().date().isoformat(),
            }
            self._put(txn, self.subs, to_base_id, moved)
            self._put(
                txn,
                self.subs,
                from_base_id,
                sub
                | {
                    "status": "transferred",
                    "transferred_to": to_base_id,
                    "transferred_at": _iso(self.clock.wall()),
                },
            )
            self._cancel_pending(txn, from_base_id, f"subscription transferred to {to_base_id}")
            zero = Decimal("0.00")
            order = self._new_order(
                txn,
                to_base_id,
                "transfer",
                sub["seats"],
                zero,
                zero,
                zero,
                credit.days_left,
                "paid",
            )
            order |= {
                "credit_excl_vat": str(credit.amount_excl_vat),
                "transferred_from": from_base_id,
                "licence_serial": self._issue(txn, moved),
            }
            self._put(txn, self.orders, order["order_id"], order)
            code = self._new_code(txn, to_base_id, "transfer")
        return order | code

    def _cancel_pending(self, txn: lmdb.Transaction, base_id: str, reason: str) -> None:
        cursor = txn.cursor(db=self.orders)
        for _, raw in list(cursor):
            order = json.loads(bytes(raw))
            if order["base_id"] == base_id and order["status"] in ("pending", "awaiting_approval"):
                order |= {
                    "status": "cancelled",
                    "cancelled_at": _iso(self.clock.wall()),
                    "cancel_reason": reason,
                }
                self._put(txn, self.orders, order["order_id"], order)

    def approve_free(self, order_id: str) -> dict[str, Any]:
        """The vendor approved a free licence (association, school, new business)."""
        order = self.order(order_id)
        if order["status"] != "awaiting_approval":
            raise LedgerError("NOT_AWAITING", f"order {order_id} does not await approval")
        return self.mark_paid(order_id, reference="free:approved", allow_awaiting=True)

    def mark_paid(
        self, order_id: str, *, reference: str = "", allow_awaiting: bool = False
    ) -> dict[str, Any]:
        """Record the payment; issue the new signed licence and the invoice at once."""
        today = self.clock.wall().date()
        with self.env.begin(write=True) as txn:
            order = self._get(txn, self.orders, order_id)
            if order is None:
                raise LedgerError("ORDER_NOT_FOUND", f"no order {order_id}")
            if order["status"] == "paid":
                return order
            if order["status"] == "cancelled":
                raise LedgerError(
                    "ORDER_CANCELLED",
                    f"order {order_id} was cancelled ({order['cancel_reason']}): take no payment",
                )
            if order["status"] == "awaiting_approval" and not allow_awaiting:
                raise LedgerError(
                    "NOT_APPROVED", f"order {order_id} is a free licence awaiting approval"
                )
            sub = self._get(txn, self.subs, order["base_id"])
            assert sub is not None
            months = MONTHS[Period[sub["period"]]]
            if order["kind"] == "new":
                sub |= {
                    "status": "active",
                    "seats": order["seats"],
                    "valid_from": today.isoformat(),
                    "renewal": add_months(today, months).isoformat(),
                }
            elif order["kind"] == "extra_seats":
                sub["seats"] += order["seats"]
            else:
                renewal = date.fromisoformat(sub["renewal"])
                sub |= {
                    "valid_from": renewal.isoformat(),
                    "renewal": add_months(renewal, months).isoformat(),
                }
            self._put(txn, self.subs, sub["base_id"], sub)
            if order["kind"] == "extra_seats":
                # Both the period in force and a next one already paid get the seats.
                serial = self._reissue(txn, sub, force=True) or self._issue(txn, sub)
            else:
                serial = self._issue(txn, sub)
            number = f"INV-{today.year}-{self._counter(txn, f'invoices-{today.year}'):05d}"
            order |= {
                "status": "paid",
                "paid_at": _iso(self.clock.wall()),
                "payment_reference": reference,
                "invoice_number": number,
                "licence_serial": serial,
            }
            self._put(txn, self.orders, order_id, order)
        return order

    def _issue(self, txn: lmdb.Transaction, sub: dict[str, Any]) -> str:
        """Sign and record a licence for the subscription's terms; its serial."""
        now = self.clock.wall().replace(microsecond=0).astimezone(UTC)
        licence = Licence(
            serial="",
            base_id=sub["base_id"],
            licensee=Licensee(**sub["licensee"]),
            edition=Edition[sub["edition"]],
            mode=Mode[sub["mode"]],
            period=Period[sub["period"]],
            seats=sub["seats"],
            valid_from=date.fromisoformat(sub["valid_from"]),
            valid_until=date.fromisoformat(sub["renewal"]),
            issued_at=now,
            auto_renew=sub["auto_renew"],
            features=("stock", "supplier-accounting", "extensions")
            if sub["edition"] == Edition.ENTERPRISE.name
            else (),
            latest_client_version=self.latest_client_version,
            order_url=self._order_url(txn),
        )
        return self._sign(txn, licence)

    def _sign(self, txn: lmdb.Transaction, licence: Licence) -> str:
        """Give `licence` the base id's next serial, sign it, record it; its serial."""
        if self.key is None:
            raise LedgerError("NO_SIGNING_KEY", "issuing a licence needs --signing-key")
        n = self._counter(txn, f"licences/{licence.base_id}")
        licence = dataclasses.replace(licence, serial=f"L-{licence.base_id[-6:]}-{n:04d}")
        self._put(
            txn,
            self.licences,
            f"{licence.base_id}/{n:06d}",
            {
                "serial": licence.serial,
                "issued_at": _iso(licence.issued_at),
                "seats": licence.seats,
                "valid_from": licence.valid_from.isoformat(),
                "valid_until": licence.valid_until.isoformat(),
                "text": sign(licence, self.key),
            },
        )
        return licence.serial

    def _reissue(
        self, txn: lmdb.Transaction, sub: dict[str, Any], force: bool = False
    ) -> str | None:
        """Re-sign the licence in force and the next one with the subscription's current seats,
        auto-renew flag and order URL (their dates unchanged), when they differ or `force`;
        the serial of the licence in force afterwards (None when there is none)."""
        if self.key is None:
            raise LedgerError("NO_SIGNING_KEY", "issuing a licence needs --signing-key")
        own = {self.key.kid: TrustedKey(self.key.kid, self.key.private.public_key())}
        now = self.clock.wall().replace(microsecond=0).astimezone(UTC)
        terms = {
            "seats": sub["seats"],
            "auto_renew": sub["auto_renew"],
            "order_url": self._order_url(txn),
        }
        in_force: str | None = None
        records = in_force_and_next(self._history(txn, sub["base_id"]), now.date())
        for position, record in enumerate(records):
            if record is None:
                continue
            try:
                licence = verify(record["text"], own)
            except LicenceRejected:
                continue  # signed with an earlier vendor key: left as it was issued
            serial = licence.serial
            if force or any(getattr(licence, k) != v for k, v in terms.items()):
                serial = self._sign(txn, dataclasses.replace(licence, issued_at=now, **terms))
            if position == 0:
                in_force = serial
        return in_force

    def _order_url(self, txn: lmdb.Transaction) -> str:
        return bytes(txn.get(b"order_url", db=self.meta) or b"").decode()

    def set_order_url(self, url: str) -> None:
        """Where customers order one more connection; carried by every licence issued."""
        with self.env.begin(write=True, db=self.meta) as txn:
            txn.put(b"order_url", url.encode())

    # -- the daemons' calls --------------------------------------------------------------------

    def authenticate(self, base_id: str, secret: str, code: str = "") -> None:
        """Let a daemon in: its secret must be the one bound to the base id; an unbound base
        id with a subscription binds the secret with a valid registration code, once."""
        if not (base_id.isdigit() and len(base_id) == 17) or len(secret) < 16:
            raise LedgerError("BAD_INSTALLATION", "base id and installation secret required")
        digest = _digest(secret)
        with self.env.begin(write=True) as txn:
            known = txn.get(base_id.encode(), db=self.installs)
            if known is not None and hmac.compare_digest(bytes(known).decode(), digest):
                return
            issued = self._get(txn, self.codes, base_id)
            if code:
                self._use_code(txn, base_id, issued, code)
            if known is not None:
                raise LedgerError(
                    "WRONG_SECRET",
                    f"base id {base_id} is registered to another installation: if this server "
                    "replaced it, ask the vendor to reset the registration "
                    f"(seatd-cloud reset-installation {base_id}) and register again with the "
                    "new code (seatctl licence register CODE)",
                )
            if not code:
                if issued is None and self._get(txn, self.subs, base_id) is None:
                    return
                raise LedgerError(
                    "REGISTRATION_REQUIRED",
                    f"base id {base_id} has a subscription but this installation is not "
                    "registered: run `seatctl licence register CODE` with the registration "
                    "code from the vendor (or set cloud.registration_code)",
                )
            txn.put(base_id.encode(), digest.encode(), db=self.installs)
            self._record(txn, base_id, "installation_registered")

    def _use_code(
        self, txn: lmdb.Transaction, base_id: str, issued: dict[str, Any] | None, code: str
    ) -> None:
        if issued is None or not hmac.compare_digest(issued["hash"], _digest(_normal(code))):
            raise LedgerError(
                "REGISTRATION_CODE_WRONG",
                f"this is not the registration code of base id {base_id}: check it, or ask "
                "the vendor for a new one",
            )
        if issued["used_at"]:
            raise LedgerError(
                "REGISTRATION_CODE_USED",
                f"this registration code was already used on {issued['used_at']}: ask the "
                "vendor for a new one",
            )
        if self.clock.wall() >= datetime.fromisoformat(issued["expires_at"]):
            raise LedgerError(
                "REGISTRATION_CODE_EXPIRED",
                f"this registration code expired on {issued['expires_at'][:10]}: ask the "
                "vendor for a new one",
            )
        self._put(txn, self.codes, base_id, issued | {"used_at": _iso(self.clock.wall())})

    def _new_code(
        self, txn: lmdb.Transaction, base_id: str, why: str, days: int = CODE_DAYS
    ) -> dict[str, str]:
        """A fresh one-time code for `base_id` (any earlier unused one no longer works)."""
        raw = base64.b32encode(secrets.token_bytes(20)).decode()
        code = "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))
        now = self.clock.wall()
        expires = _iso(now + timedelta(days=days))
        self._put(
            txn,
            self.codes,
            base_id,
            {
                "hash": _digest(_normal(code)),
                "issued_at": _iso(now),
                "expires_at": expires,
                "used_at": "",
            },
        )
        self._record(txn, base_id, "registration_code_issued", why)
        return {"registration_code": code, "registration_code_expires_at": expires}

    def registration_code(self, base_id: str, days: int = CODE_DAYS) -> dict[str, str]:
        """A new one-time registration code for a base id with a subscription."""
        with self.env.begin(write=True) as txn:
            if self._get(txn, self.subs, base_id) is None:
                raise LedgerError("NO_SUBSCRIPTION", f"base id {base_id} has no subscription")
            return self._new_code(txn, base_id, "vendor", days)

    def reset_installation(self, base_id: str) -> dict[str, str]:
        """Forget the installation bound to a base id (server moved, or a mistake); the next
        one registers with the new code returned."""
        with self.env.begin(write=True) as txn:
            if txn.get(base_id.encode(), db=self.installs) is None:
                raise LedgerError(
                    "NOT_REGISTERED", f"base id {base_id} has no registered installation"
                )
            txn.delete(base_id.encode(), db=self.installs)
            self._record(txn, base_id, "installation_reset")
            return self._new_code(txn, base_id, "reset")

    def _record(self, txn: lmdb.Transaction, base_id: str, kind: str, detail: str = "") -> None:
        n = self._counter(txn, "audit")
        self._put(
            txn,
            self.audit,
            f"{n:012d}",
            {"at": _iso(self.clock.wall()), "base_id": base_id, "kind": kind, "detail": detail},
        )

    def audit_log(self, base_id: str | None = None) -> list[dict[str, Any]]:
        """The cloud's own record of registrations and resets, oldest first."""
        with self.env.begin(db=self.audit) as txn:
            found = [json.loads(bytes(v)) for _, v in txn.cursor()]
        return [e for e in found if base_id is None or e["base_id"] == base_id]

    def sync_answer(self, base_id: str) -> SyncAnswer:
        """What a daemon's sync receives: the licence in force and the next one, re-signed
        first if the subscription's terms changed since (auto-renew, order URL); or, for a
        subscription transferred to another base id, where and when it went."""
        with self.env.begin(write=True) as txn:
            sub = self._get(txn, self.subs, base_id)
            if sub is not None and sub["status"] == "transferred":
                return SyncAnswer(
                    transferred_to=sub["transferred_to"],
                    transferred_at=datetime.fromisoformat(sub["transferred_at"]),
                )
            if sub is not None and sub["status"] == "active" and self.key is not None:
                self._reissue(txn, sub)
            in_force, upcoming = in_force_and_next(
                self._history(txn, base_id), self.clock.wall().date()
            )
        return SyncAnswer(
            licence=str(in_force["text"]) if in_force else "",
            next_licence=str(upcoming["text"]) if upcoming else "",
        )

    def current_licence(self, base_id: str) -> str:
        """The licence in force today for `base_id`; empty when none was issued."""
        in_force, _ = in_force_and_next(self.licence_history(base_id), self.clock.wall().date())
        return str(in_force["text"]) if in_force else ""

    def next_licence(self, base_id: str) -> str:
        """A paid licence that starts after today; empty when there is none."""
        _, upcoming = in_force_and_next(self.licence_history(base_id), self.clock.wall().date())
        return str(upcoming["text"]) if upcoming else ""

    def signed_time(self, base_id: str) -> tuple[datetime, bytes]:
        """Now (to the second), and the vendor key's signature of it for this base id."""
        assert self.key is not None, "the server always has its signing key"
        now = self.clock.wall().replace(microsecond=0)
        return now, self.key.private.sign(time_message(base_id, _iso(now)))


def in_force_and_next(
    issued: list[dict[str, Any]], today: date
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Of the licences issued for one base id (oldest first): the one in force on `today`,
    and the next one paid for a later period."""
    day = today.isoformat()
    in_force: dict[str, Any] | None = None
    upcoming: dict[str, Any] | None = None
    for record in issued:
        # Records written before valid_from was kept count as started.
        start = str(record.get("valid_from", ""))
        if start <= day:
            if in_force is None or start >= str(in_force.get("valid_from", "")):
                in_force = record
        elif upcoming is None or start <= str(upcoming["valid_from"]):
            upcoming = record
    return in_force, upcoming


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _normal(code: str) -> str:
    """A code as typed: case, spaces and dashes do not matter."""
    return "".join(code.split()).replace("-", "").upper()


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
