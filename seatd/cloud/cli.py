"""`seatd-cloud`: run the vendor's cloud endpoint, and the vendor's own admin commands."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import structlog
from grpc_health.v1 import health_pb2

from seatd import tables
from seatd.clock import SystemClock
from seatd.cloud import server as cloud_server
from seatd.cloud.ledger import FREE_REASONS, Ledger, LedgerError
from seatd.cloud.pricing import PriceTable, PricingError, quote
from seatd.entitlement import Edition, Licensee, Mode, Period
from seatd.errors import StateError
from seatd.licence.signing import SigningKey, load_signing_key
from seatd.log import configure

log = structlog.get_logger("seatd.cloud")

EDITIONS = click.Choice([e.name for e in Edition])
MODES = click.Choice([m.name for m in Mode])
PERIODS = click.Choice([p.name for p in Period])


def _prices(path: Path | None) -> PriceTable:
    try:
        return PriceTable.load(path)
    except (PricingError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


def _key(path: Path | None) -> SigningKey | None:
    if path is None:
        return None
    try:
        return load_signing_key(path)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read signing key {path}: {exc}") from None


def _ledger(
    state_dir: Path, key: Path | None, price_table: Path | None, version: str = ""
) -> Ledger:
    try:
        return Ledger(state_dir, _key(key), _prices(price_table), SystemClock(), version)
    except StateError as exc:  # a damaged ledger: one line that says what to do, no traceback
        raise click.ClickException(str(exc)) from None


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _print_order(order: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(order, indent=2))
        return
    days = f", prorated for {order['days_left']} days" if order["kind"] == "extra_seats" else ""
    click.echo(
        f"order {order['order_id']} ({order['kind']}, {order['seats']} seats{days}): "
        f"{order['amount_excl_vat']} excl. VAT + {order['vat']} VAT = "
        f"{order['amount_incl_vat']} {order['currency']}, {order['status']}"
        + (
            f", invoice {order['invoice_number']}, licence {order['licence_serial']}"
            if order["status"] == "paid"
            else ""
        )
    )


state_dir_option = click.option("--state-dir", type=click.Path(path_type=Path), required=True)
key_option = click.option("--signing-key", type=click.Path(path_type=Path, exists=True))
prices_option = click.option(
    "--price-table",
    type=click.Path(path_type=Path, exists=True),
    help="Price table TOML (default: the shipped sample).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="JSON, for scripts.")


@click.group()
def main() -> None:
    """The vendor's cloud endpoint for seatd: subscriptions, prices, orders, licence sync."""


@main.command()
@click.option("--listen", default="0.0.0.0:7443", show_default=True)
@state_dir_option
@click.option("--signing-key", type=click.Path(path_type=Path, exists=True), required=True)
@prices_option
@click.option("--tls-cert", type=click.Path(path_type=Path, exists=True))
@click.option("--tls-key", type=click.Path(path_type=Path, exists=True))
@click.option(
    "--payment-token",
    envvar="SEATD_CLOUD_PAYMENT_TOKEN",
    default="",
    help="Bearer token of the payment system's ReportPayment calls.",
)
@click.option("--latest-client-version", default="")
@click.option(
    "--order-url",
    default=None,
    help="Where customers order one more connection; kept, and carried by every licence issued.",
)
def serve(
    listen: str,
    state_dir: Path,
    signing_key: Path,
    price_table: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    payment_token: str,
    latest_client_version: str,
    order_url: str | None,
) -> None:
    """Serve the daemons' licence sync and the payment callback."""
    configure()
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    ledger = _ledger(state_dir, signing_key, price_table, latest_client_version)
    if order_url is not None:
        ledger.set_order_url(order_url)

    async def run() -> None:
        try:
            srv, port, checks = cloud_server.build(
                ledger, listen, payment_token=payment_token, tls_cert=tls_cert, tls_key=tls_key
            )
        except OSError as exc:
            raise click.ClickException(str(exc)) from None
        await srv.start()
        await checks.set(health_pb2.HealthCheckResponse.SERVING)
        host = listen.rpartition(":")[0]
        log.info(
            "cloud.ready", listen=f"{host}:{port}", tls=bool(tls_cert), state_dir=str(state_dir)
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await checks.set(health_pb2.HealthCheckResponse.NOT_SERVING)
        await srv.stop(1)
        log.info("cloud.stopped")

    try:
        asyncio.run(run())
    finally:
        ledger.close()


@main.command("quote")
@click.option("--edition", type=EDITIONS, required=True)
@click.option("--mode", type=MODES, required=True)
@click.option("--period", type=PERIODS, required=True)
@click.option("--seats", type=click.IntRange(1), required=True)
@click.option("--country", required=True, help="Buyer's country, ISO alpha-2 (FR, BE, ...).")
@click.option("--promo", default="")
@click.option("--free", type=click.Choice(FREE_REASONS), default=None)
@prices_option
@json_option
def quote_command(
    edition: str,
    mode: str,
    period: str,
    seats: int,
    country: str,
    promo: str,
    free: str | None,
    price_table: Path | None,
    as_json: bool,
) -> None:
    """Price one instalment (for support staff)."""
    try:
        q = quote(
            _prices(price_table),
            edition=Edition[edition],
            mode=Mode[mode],
            period=Period[period],
            seats=seats,
            country=country,
            promo=promo,
            free=free or "",
        )
    except PricingError as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(q.as_json(), indent=2))
        return
    table = tables.table(
        "",
        tables.column(q.currency, justify="right", no_wrap=True),
        title=f"{edition} / {mode}, {seats} connection(s), {period.lower()}, {country}",
    )
    table.add_row("Price per connection per month", str(q.price_per_seat_month))
    table.add_row(f"Amount per instalment, excl. VAT ({q.months} months)", str(q.amount_excl_vat))
    table.add_row(f"VAT {q.vat_rate} %", str(q.vat))
    table.add_row("Amount per instalment, incl. VAT", str(q.amount_incl_vat))
    tables.show(table)


@main.command()
@state_dir_option
@key_option
@prices_option
@click.option("--base-id", required=True)
@click.option("--company", required=True)
@click.option("--contact", default="")
@click.option("--address", default="")
@click.option("--postcode", default="")
@click.option("--city", default="")
@click.option("--country", required=True, help="Buyer's country, ISO alpha-2.")
@click.option("--email", default="")
@click.option("--edition", type=EDITIONS, required=True)
@click.option("--mode", type=MODES, required=True)
@click.option("--period", type=PERIODS, required=True)
@click.option("--seats", type=click.IntRange(1), required=True)
@click.option("--auto-renew/--no-auto-renew", default=True)
@click.option("--promo", default="")
@click.option(
    "--free",
    type=click.Choice(FREE_REASONS),
    default=None,
    help="Ask for a free licence; the vendor approves it with `approve`.",
)
@click.option("--paid", is_flag=True, help="Paid online at once: issue the licence now.")
@json_option
def subscribe(
    state_dir: Path,
    signing_key: Path | None,
    price_table: Path | None,
    base_id: str,
    company: str,
    contact: str,
    address: str,
    postcode: str,
    city: str,
    country: str,
    email: str,
    edition: str,
    mode: str,
    period: str,
    seats: int,
    auto_renew: bool,
    promo: str,
    free: str | None,
    paid: bool,
    as_json: bool,
) -> None:
    """Open a subscription for a base id (its first order is pending until paid)."""
    ledger = _ledger(state_dir, signing_key, price_table)
    try:
        order = ledger.subscribe(
            base_id=base_id,
            licensee=Licensee(company, contact, address, postcode, city, country.upper(), email),
            edition=Edition[edition],
            mode=Mode[mode],
            period=Period[period],
            seats=seats,
            country=country,
            auto_renew=auto_renew,
            promo=promo,
            free=free or "",
        )
        if paid:
            code = {k: v for k, v in order.items() if k.startswith("registration_code")}
            order = ledger.mark_paid(order["order_id"], reference="online") | code
    except (LedgerError, PricingError) as exc:
        raise _fail(exc) from None
    finally:
        ledger.close()
    _print_order(order, as_json)
    if not as_json:
        _print_code(base_id, order)


def _print_code(base_id: str, code: dict[str, str]) -> None:
    click.echo(
        f"registration code for {base_id}: {code['registration_code']} "
        f"(one use, until {code['registration_code_expires_at'][:10]}): on the customer's "
        "server run `seatctl licence register CODE`"
    )


def _code_command(
    state_dir: Path, base_id: str, as_json: bool, issue: Callable[[Ledger], dict[str, str]]
) -> dict[str, str]:
    ledger = _ledger(state_dir, None, None)
    try:
        code = issue(ledger)
    except LedgerError as exc:
        raise _fail(exc) from None
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps({"base_id": base_id, **code}, indent=2))
    return code


@main.command("registration-code")
@state_dir_option
@click.argument("base_id")
@click.option("--days", type=click.IntRange(1, 365), default=30, show_default=True)
@json_option
def registration_code(state_dir: Path, base_id: str, days: int, as_json: bool) -> None:
    """A new one-time code that registers the customer's server (earlier codes stop working)."""
    code = _code_command(
        state_dir, base_id, as_json, lambda ledger: ledger.registration_code(base_id, days)
    )
    if not as_json:
        _print_code(base_id, code)


@main.command("reset-installation")
@state_dir_option
@click.argument("base_id")
@json_option
def reset_installation(state_dir: Path, base_id: str, as_json: bool) -> None:
    """Forget the server registered for a base id (moved, or a mistake); prints a new code."""
    code = _code_command(
        state_dir, base_id, as_json, lambda ledger: ledger.reset_installation(base_id)
    )
    if not as_json:
        click.echo(f"installation of {base_id} reset: it must register again")
        _print_code(base_id, code)


@main.command("audit")
@state_dir_option
@click.option("--base-id", default=None)
@json_option
def audit(state_dir: Path, base_id: str | None, as_json: bool) -> None:
    """Registrations, resets and registration codes issued, oldest first."""
    ledger = _ledger(state_dir, None, None)
    try:
        entries = ledger.audit_log(base_id)
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    for e in entries:
        click.echo(
            f"{e['at']}  {e['base_id']}  {e['kind']}" + (f" ({e['detail']})" if e["detail"] else "")
        )


def _order_command(name: str, help_text: str, action: str) -> None:
    @main.command(name, help=help_text)
    @state_dir_option
    @key_option
    @prices_option
    @click.argument("order_id")
    @click.option("--reference", default="", help="Cheque or transfer reference.")
    @json_option
    def command(
        state_dir: Path,
        signing_key: Path | None,
        price_table: Path | None,
        order_id: str,
        reference: str,
        as_json: bool,
    ) -> None:
        ledger = _ledger(state_dir, signing_key, price_table)
        try:
            if action == "approve":
                order = ledger.approve_free(order_id)
            else:
                order = ledger.mark_paid(order_id, reference=reference or "manual")
        except LedgerError as exc:
            raise _fail(exc) from None
        finally:
            ledger.close()
        _print_order(order, as_json)


_order_command("mark-paid", "Record a cheque or transfer: issues the licence and invoice.", "paid")
_order_command("approve", "Approve a free licence (association, school, new business).", "approve")


@main.command("order-seats")
@state_dir_option
@prices_option
@click.option("--base-id", required=True)
@click.option("--seats", type=click.IntRange(1), required=True)
@json_option
def order_seats(
    state_dir: Path, price_table: Path | None, base_id: str, seats: int, as_json: bool
) -> None:
    """Extra seats for a customer until the renewal date, prorated."""
    ledger = _ledger(state_dir, None, price_table)
    try:
        order = ledger.order_extra_seats(base_id, seats)
    except (LedgerError, PricingError) as exc:
        raise _fail(exc) from None
    finally:
        ledger.close()
    _print_order(order, as_json)


@main.command("renew")
@state_dir_option
@prices_option
@click.option("--base-id", required=True)
@json_option
def renew(state_dir: Path, price_table: Path | None, base_id: str, as_json: bool) -> None:
    """The order for a subscription's next period."""
    ledger = _ledger(state_dir, None, price_table)
    try:
        order = ledger.renew(base_id)
    except (LedgerError, PricingError) as exc:
        raise _fail(exc) from None
    finally:
        ledger.close()
    _print_order(order, as_json)


@main.command("auto-renew")
@state_dir_option
@click.option("--base-id", required=True)
@click.argument("setting", type=click.Choice(["on", "off"]))
def auto_renew(state_dir: Path, base_id: str, setting: str) -> None:
    """Stop (or restart) automatic renewal; the customer may stop it at any time."""
    ledger = _ledger(state_dir, None, None)
    try:
        ledger.set_auto_renew(base_id, setting == "on")
    except LedgerError as exc:
        raise _fail(exc) from None
    finally:
        ledger.close()
    click.echo(f"auto-renew {setting} for {base_id}")


@main.command("list")
@state_dir_option
@json_option
def list_command(state_dir: Path, as_json: bool) -> None:
    """Subscriptions and their orders."""
    ledger = _ledger(state_dir, None, None)
    try:
        subs, orders = ledger.subscriptions(), ledger.list_orders()
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps({"subscriptions": subs, "orders": orders}, indent=2))
        return
    # Base ids (17 digits) and dates stay on one line; edition over mode, period over
    # auto-renew, renewal over status: two short lines a subscription fit 80 columns.
    table = tables.table(
        tables.column("Base id", min_width=17),
        tables.column("Company", max_width=13),
        tables.column("Edition / mode", max_width=10),
        tables.column("Period / auto-renew", max_width=10),
        tables.column("Seats", justify="right", max_width=5),
        tables.column("Renewal / status", min_width=10, max_width=10),
        title="Subscriptions",
    )
    for s in subs:
        table.add_row(
            s["base_id"],
            s["licensee"]["company"],
            f"{s['edition']}\n{s['mode']}",
            f"{s['period']}\n{'auto-renew' if s['auto_renew'] else 'no auto-renew'}",
            str(s["seats"]),
            f"{s['renewal'] or '-'}\n{s['status']}",
        )
    tables.show(table)
    orders_table = tables.table(
        "Order / invoice",
        tables.column("Base id", min_width=17),
        "Kind / status",
        tables.column("Seats", justify="right"),
        tables.column("Incl. VAT", justify="right"),
        title="Orders",
    )
    for o in orders:
        orders_table.add_row(
            f"{o['order_id']}\n{o['invoice_number'] or '-'}",
            o["base_id"],
            f"{o['kind']}\n{o['status']}",
            str(o["seats"]),
            f"{o['amount_incl_vat']} {o['currency']}",
        )
    tables.show(orders_table)


@main.command()
@state_dir_option
@key_option
@prices_option
@click.option("--from-base-id", required=True)
@click.option("--to-base-id", required=True)
@json_option
def transfer(
    state_dir: Path,
    signing_key: Path | None,
    price_table: Path | None,
    from_base_id: str,
    to_base_id: str,
    as_json: bool,
) -> None:
    """Move a subscription's unused remainder to a new base id (credit for the days left)."""
    ledger = _ledger(state_dir, signing_key, price_table)
    try:
        order = ledger.transfer(from_base_id, to_base_id)
    except (LedgerError, PricingError) as exc:
        raise _fail(exc) from None
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(order, indent=2))
        return
    click.echo(
        f"transferred {from_base_id} -> {to_base_id}: {order['days_left']} days left "
        f"credited ({order['credit_excl_vat']} {order['currency']} excl. VAT), "
        f"licence {order['licence_serial']}"
    )
    _print_code(to_base_id, order)


@main.command()
@state_dir_option
@click.option("--base-id", required=True)
@json_option
def history(state_dir: Path, base_id: str, as_json: bool) -> None:
    """Every licence issued for a base id."""
    ledger = _ledger(state_dir, None, None)
    try:
        issued = [
            {k: v for k, v in e.items() if k != "text"} for e in ledger.licence_history(base_id)
        ]
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(issued, indent=2))
        return
    table = tables.table(
        "Serial",
        tables.column("Issued (UTC)", min_width=10),
        tables.column("Seats", justify="right"),
        tables.column("Valid until", min_width=10),
        title=f"Licences issued for {base_id}",
    )
    for e in issued:
        table.add_row(e["serial"], e["issued_at"], str(e["seats"]), e["valid_until"])
    tables.show(table)


@main.command()
@state_dir_option
@click.argument("order_id")
@json_option
def invoice(state_dir: Path, order_id: str, as_json: bool) -> None:
    """The invoice of a paid order: number, lines, amounts."""
    ledger = _ledger(state_dir, None, None)
    try:
        order = ledger.order(order_id)
    except LedgerError as exc:
        raise _fail(exc) from None
    finally:
        ledger.close()
    if not order["invoice_number"]:
        raise click.ClickException(f"order {order_id} is {order['status']}: no invoice yet")
    lines = [
        {
            "description": f"{order['kind'].replace('_', ' ')}: {order['seats']} connection(s)"
            + (f", {order['days_left']} days" if order["kind"] == "extra_seats" else ""),
            "amount_excl_vat": order["amount_excl_vat"],
        }
    ]
    record = {
        "invoice_number": order["invoice_number"],
        "order_id": order_id,
        "base_id": order["base_id"],
        "paid_at": order.get("paid_at", ""),
        "lines": lines,
        "amount_excl_vat": order["amount_excl_vat"],
        "vat": order["vat"],
        "amount_incl_vat": order["amount_incl_vat"],
        "currency": order["currency"],
    }
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    click.echo(f"Invoice {record['invoice_number']} (order {order_id}, base {order['base_id']})")
    for line in lines:
        click.echo(f"  {line['description']:<50} {line['amount_excl_vat']:>10}")
    click.echo(f"  {'Total excl. VAT':<50} {record['amount_excl_vat']:>10}")
    click.echo(f"  {'VAT':<50} {record['vat']:>10}")
    click.echo(f"  {'Total incl. VAT':<50} {record['amount_incl_vat']:>10} {record['currency']}")
