"""`seatctl status`: the daemon at a glance."""

from __future__ import annotations

import json
from typing import Any

import click
from seatclient.v1 import admin_pb2

from seatd import tables
from seatd.ctl.app import TIMEOUT, Ctx, main
from seatd.ctl.fmt import dt, hms, iso, session_json
from seatd.ctl.licence import licence_json


def store_warning(store: admin_pb2.StoreUsage) -> str:
    """What `seatctl status` says of a filling store, and what to do about it."""
    if store.grants_refused:
        what = "FULL: new seats are refused (releases still work)"
    elif store.warning:
        what = "WARNING: filling up"
    else:
        return ""
    return (
        f" [bold red]{what}[/]: raise store.map_size in /etc/seatd/seatd.toml and restart, "
        "prune the journal (journal.max_entries) or free disk space"
    )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.pass_obj
def status(obj: Ctx, as_json: bool) -> None:
    """One screen: daemon, licence, seats, sessions, last sync."""
    with obj.admin() as admin:
        listed = admin.ListSessions(admin_pb2.ListSessionsRequest(), timeout=TIMEOUT)
        lic = admin.GetLicence(admin_pb2.AdminServiceGetLicenceRequest(), timeout=TIMEOUT)
    now = dt(listed.server_time)
    started = dt(listed.daemon_started_at)
    uptime = int((now - started).total_seconds())
    j = licence_json(lic.licence)
    summary: dict[str, Any] = {
        "daemon_version": listed.daemon_version,
        "started_at": iso(started),
        "uptime_seconds": uptime,
        "licence": j,
        "in_use": listed.in_use,
        "cap": listed.seat_cap if listed.HasField("seat_cap") else None,
        "waiting": listed.waiting,
        "store": {
            "used_bytes": listed.store.used_bytes,
            "ceiling_bytes": listed.store.ceiling_bytes,
            "used_ratio": round(listed.store.used_ratio, 4),
            "warning": listed.store.warning,
            "grants_refused": listed.store.grants_refused,
        },
        "sessions": [session_json(s) for s in listed.sessions],
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    grid = tables.grid()
    grid.add_row(
        "Daemon",
        f"seatd {listed.daemon_version}, up {hms(uptime)}",
    )
    grid.add_row(
        "Licence",
        f"{j['edition'].upper()}/{j['mode'].upper()}, {j['status']}"
        + (f", until {j['valid_until']} ({j['days_left']} days)" if j["serial"] else ""),
    )
    cap = summary["cap"]
    grid.add_row(
        "Seats",
        f"{listed.in_use} in use of {cap if cap is not None else 'unlimited'}"
        + (f", {listed.waiting} waiting" if listed.waiting else ""),
    )
    store = listed.store
    if store.ceiling_bytes:
        grid.add_row(
            "Store",
            f"{store.used_ratio:.0%} of {store.ceiling_bytes / (1 << 20):g} MiB used"
            + store_warning(store),
        )
    if j["cloud_url"]:
        grid.add_row(
            "Last sync",
            f"{j['last_sync'] or 'never'}"
            + (f" ({j['failed_syncs']} failed since)" if j["failed_syncs"] else ""),
        )
    tables.show(grid)
    if listed.sessions:
        table = tables.table(
            tables.column("Id", justify="right", no_wrap=True),
            "User",
            "Name",
            "Computer",
            "Duration",
            title="Sessions",
        )
        for s in listed.sessions:
            table.add_row(str(s.id), s.user_code, s.user_name, s.hostname, hms(s.duration.seconds))
        tables.show(table)
