"""`seatctl seats ...`: the active seats, and ordering more."""

from __future__ import annotations

import click
from seatclient.v1 import admin_pb2

from seatd.ctl.app import TIMEOUT, Ctx, main
from seatd.ctl.licence import licence_json


@main.group()
def seats() -> None:
    """Active seats (owner or buyer)."""


@seats.command("set")
@click.argument("count", type=click.IntRange(min=1))
@click.pass_obj
def seats_set(obj: Ctx, count: int) -> None:
    """Set the active seats, up to the purchased ones. Lowering evicts no one."""
    with obj.admin() as admin:
        r = admin.SetActiveSeats(admin_pb2.SetActiveSeatsRequest(seats=count), timeout=TIMEOUT)
    j = licence_json(r.licence)
    click.echo(
        f"active seats: {j['seats_active']} of {j['seats_purchased']} purchased "
        f"({j['in_use']} in use)"
    )


@seats.command("order")
@click.argument("count", type=click.IntRange(min=1))
@click.pass_obj
def seats_order(obj: Ctx, count: int) -> None:
    """Order more seats from the vendor, prorated to the renewal date."""
    with obj.admin() as admin:
        r = admin.OrderSeats(admin_pb2.OrderSeatsRequest(seats=count), timeout=60)
    click.echo(
        f"order {r.order_id}: {r.seats} seat(s) for the {r.days_left} days left, "
        f"{r.amount_excl_vat} excl. VAT + {r.vat} VAT = {r.amount_incl_vat} {r.currency} "
        f"({r.status}); the next sync after payment brings the new licence"
    )
