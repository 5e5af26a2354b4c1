"""`seatctl report ...`: usage over days, as a table, JSON or CSV."""

from __future__ import annotations

import json
import sys

import click
from seatclient.v1 import admin_pb2

from seatd import tables, usage
from seatd.ctl.app import TIMEOUT, Ctx, main
from seatd.ctl.fmt import dt
from seatd.ctl.journal import _all_entries


@main.group()
def report() -> None:
    """Reports from the journal."""


@report.command("usage")
@click.option("--days", type=click.IntRange(1, 3660), default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="A JSON list, for scripts.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV, for a spreadsheet.")
@click.pass_obj
def report_usage(obj: Ctx, days: int, as_json: bool, as_csv: bool) -> None:
    """Per day: peak concurrent sessions, seat-hours, refusals at capacity, evictions."""
    with obj.admin() as admin:
        listed = admin.ListSessions(admin_pb2.ListSessionsRequest(), timeout=TIMEOUT)
        entries = _all_entries(admin)
    rows = usage.last_days(
        entries,
        days=days,
        now=dt(listed.server_time),
        utc_offset=listed.server_utc_offset_seconds,
    )
    if as_json:
        click.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    if as_csv:
        usage.write_csv(rows, sys.stdout)
        return
    cap = listed.seat_cap if listed.HasField("seat_cap") else None
    top = max([cap or 0, *(r.peak for r in rows), 1])
    table = tables.table(
        *(
            tables.column(col, justify="left" if col in ("Day", "") else "right")
            for col in ("Day", "Peak", "", "Seat-hours", "Refused", "Evicted")
        ),
        title=f"Usage over {days} days (seats in force: {cap or 'unlimited'})",
    )
    for r in rows:
        bar = "█" * round(20 * r.peak / top)
        style = "red" if cap is not None and r.peak >= cap else "green"
        table.add_row(
            r.day.isoformat(),
            str(r.peak),
            f"[{style}]{bar}[/{style}]",
            f"{r.seat_hours:.1f}",
            str(r.refusals or ""),
            str(r.evictions or ""),
        )
    busiest = max(r.peak for r in rows)
    refused = sum(r.refusals for r in rows)
    tables.show(
        table,
        f"Peak over the period: {busiest} concurrent sessions; {refused} refusals at "
        "capacity."
        + (" Refusals mean users were turned away: consider more seats." if refused else ""),
    )
