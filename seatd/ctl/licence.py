"""`seatctl licence ...`: the licence in force, its history, import, sync."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from seatclient.v1 import admin_pb2, types_pb2

from seatd import tables
from seatd.ctl.app import TIMEOUT, Ctx, main
from seatd.ctl.fmt import dt, iso, spaced
from seatd.licence import detail


def _plain(value: Any) -> Any:
    """A licence field as JSON has it: times ISO UTC with a Z, dates ISO."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def licence_json(d: types_pb2.LicenceDetail) -> dict[str, Any]:
    return {key: _plain(value) for key, value in detail.fields(d).items()}


def print_licence(d: types_pb2.LicenceDetail) -> None:
    j = licence_json(d)
    grid = tables.grid()
    if j["serial"]:
        place = detail.place(j)
        grid.add_row("Licensed to", j["licensee"]["company"] + (f" ({place})" if place else ""))
    grid.add_row("Base id (Num ID)", j["base_id"])
    grid.add_row("Edition", j["edition"].upper())
    grid.add_row("Mode", j["mode"].upper())
    status = {
        "free": "free (Standard/Local, free for life, no seat cap)",
        "valid": "valid",
        "grace": f"in grace: {j['grace_days_left']} days left to renew",
        "expired": "expired: no new connections until renewed",
        "transferred": f"transferred to base id {j['transferred_to']} on "
        f"{(j['transferred_at'] or '')[:10]}: this licence ended then, no new connections",
    }[j["status"]]
    if j["serial"]:
        renew = "auto-renew on" if j["auto_renew"] else "auto-renew off"
        grid.add_row("Subscription", f"{j['period'].upper()} ({renew})")
        grid.add_row(
            "Seats",
            f"{j['seats_purchased']} purchased / "
            f"{j['seats_active'] if j['seats_active'] is not None else '-'} "
            f"active / {j['in_use']} in use",
        )
        days = j["days_left"]
        left = f"{days} days left" if days >= 0 else f"{-days} days ago"
        grid.add_row("Valid until", f"{j['valid_until']} ({left})")
    else:
        grid.add_row("Seats", f"unlimited / {j['in_use']} in use")
    grid.add_row("Status", status)
    grid.add_row("Features", ", ".join(j["features"]) or "-")
    if j["serial"]:
        grid.add_row("Serial", j["serial"])
    if j["next_serial"]:
        grid.add_row("Next licence", f"{j['next_serial']}, installed on {j['next_valid_from']}")
    if j["order_url"]:
        grid.add_row("Order more", j["order_url"])
    if j["clock_rollback"]:
        grid.add_row("Clock", f"set back: licence dates use {j['trusted_time']}")
    if j["note"]:
        grid.add_row("Note", j["note"])
    if j["cloud_url"]:
        grid.add_row("Last successful sync", j["last_sync"] or "never")
        if j["failed_syncs"]:
            grid.add_row("Failed syncs", f"{j['failed_syncs']}: {j['last_sync_error']}")
        grid.add_row("Next sync", j["next_sync"] or "-")
    tables.show(grid)


@main.group()
def licence() -> None:
    """The licence in force: show, import, clear, history."""


@licence.command("show")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.pass_obj
def licence_show(obj: Ctx, as_json: bool) -> None:
    """What the licence allows, and until when."""
    with obj.admin() as admin:
        r = admin.GetLicence(admin_pb2.AdminServiceGetLicenceRequest(), timeout=TIMEOUT)
    if as_json:
        click.echo(json.dumps(licence_json(r.licence), indent=2))
    else:
        print_licence(r.licence)


@licence.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def licence_import(obj: Ctx, file: Path) -> None:
    """Register a licence file by hand (no internet needed)."""
    try:
        text = file.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror}") from None
    with obj.admin() as admin:
        before = admin.GetLicence(admin_pb2.AdminServiceGetLicenceRequest(), timeout=TIMEOUT)
        r = admin.ImportLicence(admin_pb2.ImportLicenceRequest(licence_text=text), timeout=TIMEOUT)
    j = licence_json(r.licence)
    was, now = before.licence, r.licence
    if j["serial"] and (was.summary, was.licensee) == (now.summary, now.licensee):
        # The daemon leaves the licence in force untouched when it is imported again.
        click.echo(f"licence {j['serial']} is already in force: nothing changed")
        return
    click.echo(
        f"licence {j['serial']} installed: {j['edition'].upper()}/{j['mode'].upper()}, "
        f"{j['seats_purchased']} seats, valid until {j['valid_until']}"
    )


@licence.command("clear")
@click.pass_obj
def licence_clear(obj: Ctx) -> None:
    """Forget the local licence (the next sync restores it)."""
    with obj.admin() as admin:
        admin.ClearLicence(admin_pb2.ClearLicenceRequest(), timeout=TIMEOUT)
    click.echo("local licence cleared: the free Standard licence applies until it is restored")


@licence.command("history")
@click.option("--json", "as_json", is_flag=True, help="A JSON list, for scripts.")
@click.pass_obj
def licence_history(obj: Ctx, as_json: bool) -> None:
    """Every licence change: when, which serial, from where."""
    with obj.admin() as admin:
        r = admin.LicenceHistory(admin_pb2.LicenceHistoryRequest(), timeout=TIMEOUT)
    rows = [
        {
            "at": iso(dt(e.at)),
            "serial": e.serial or None,
            "source": e.source,
            "by": e.by,
            "previous_serial": e.previous_serial or None,
        }
        for e in r.entries
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = tables.table(
        tables.column("When (UTC)", min_width=10, max_width=10),
        "Serial",
        "From",
        "By",
        "Replaced",
        title="Licence history",
    )
    for row in rows:
        table.add_row(
            spaced(str(row["at"])),
            row["serial"] or "(cleared)",
            row["source"],
            row["by"],
            row["previous_serial"] or "-",
        )
    tables.show(table)


@licence.command("sync")
@click.pass_obj
def licence_sync(obj: Ctx) -> None:
    """Sync with the vendor's cloud now (exit 1 with the reason when it fails)."""
    with obj.admin() as admin:
        r = admin.SyncLicence(admin_pb2.SyncLicenceRequest(), timeout=60)
    j = licence_json(r.licence)
    click.echo(
        f"synced with {j['cloud_url']}: licence {j['serial'] or '(none)'}, status {j['status']}"
    )


@licence.command("register")
@click.argument("code")
@click.pass_obj
def licence_register(obj: Ctx, code: str) -> None:
    """Register this server with the vendor's cloud, with the one-time code from the vendor."""
    with obj.admin() as admin:
        r = admin.RegisterInstallation(
            admin_pb2.RegisterInstallationRequest(registration_code=code), timeout=60
        )
    j = licence_json(r.licence)
    click.echo(
        f"registered with {j['cloud_url']}: licence {j['serial'] or '(none)'}, status {j['status']}"
    )
