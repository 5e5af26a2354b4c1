"""`seatctl sessions` and `seatctl evict`: who holds a seat, and taking one back."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

import click
from rich.table import Table
from seatclient.v1 import admin_pb2

from seatd import tables
from seatd.ctl.app import TIMEOUT, Ctx, main
from seatd.ctl.fmt import clock, dt, iso, queued_json, session_json


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.pass_obj
def sessions(obj: Ctx, as_json: bool) -> None:
    """List the open sessions."""
    with obj.admin() as admin:
        r = admin.ListSessions(admin_pb2.ListSessionsRequest(), timeout=TIMEOUT)
    now = dt(r.server_time)
    local = now.astimezone(timezone(timedelta(seconds=r.server_utc_offset_seconds)))
    cap = r.seat_cap if r.HasField("seat_cap") else None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "cap": cap,
                    "in_use": r.in_use,
                    "server_time_utc": iso(now),
                    "server_time_local": local.isoformat(timespec="seconds"),
                    "sessions": [session_json(s) for s in r.sessions],
                    # In the order they will be served (position 1 first); [] when none waits.
                    "waiting": [queued_json(w) for w in r.queue],
                },
                indent=2,
            )
        )
        return
    # Two lines a session (code over name, computer over IP, date over time) fit eight
    # fields in 80 columns without cutting any of them; the policy group and the idle time,
    # when there are any, take more lines under the user.
    table = tables.table(
        tables.column("Id", justify="right", no_wrap=True),
        "User / group",
        tables.column("Computer / IP", min_width=16),
        tables.column("Started (local)", min_width=10, max_width=10),
        tables.column("Duration", justify="right", no_wrap=True),
        tables.column("Last seen", justify="right"),
        title=f"Open sessions: {r.in_use} in use of {cap if cap is not None else 'unlimited'}",
    )
    offset = timedelta(seconds=r.server_utc_offset_seconds)
    for s in r.sessions:
        table.add_row(
            str(s.id),
            "\n".join(
                [
                    s.user_code,
                    s.user_name,
                    *([s.group] if s.group else []),
                    *([f"idle {clock(s.idle.seconds)}"] if s.HasField("idle") else []),
                ]
            ),
            f"{s.hostname}\n{s.ip}",
            (dt(s.started_at) + offset).strftime("%d/%m/%Y %H:%M:%S"),
            clock(s.duration.seconds),
            f"{int((now - dt(s.last_seen_at)).total_seconds())} s ago",
        )
    tables.show(
        table,
        *([_waiting(r, offset)] if r.queue else []),
        f"UTC time: {now:%H:%M:%S}   Local time ({r.server_timezone}): {local:%H:%M:%S}",
    )


def _waiting(r: admin_pb2.ListSessionsResponse, offset: timedelta) -> Table:
    """The wait queue (as the web console shows it), in the order it will be served."""
    table = tables.table(
        tables.column("Pos", justify="right", no_wrap=True),
        "User",
        tables.column("Computer / IP", min_width=16),
        tables.column("Since (local)", min_width=10, max_width=10),
        tables.column("Waited", justify="right", no_wrap=True),
        title=f"Waiting for a seat: {len(r.queue)}",
    )
    for w in r.queue:
        table.add_row(
            str(w.position),
            f"{w.user_code}\n{w.user_name}",
            f"{w.hostname}\n{w.ip}",
            (dt(w.queued_at) + offset).strftime("%d/%m/%Y %H:%M:%S"),
            clock(w.waited.seconds),
        )
    return table


@main.command()
@click.argument("session_id", type=int)
@click.option(
    "--reason",
    default="Connection limit exceeded",
    show_default=True,
    help="Shown to the user and kept in the session journal.",
)
@click.pass_obj
def evict(obj: Ctx, session_id: int, reason: str) -> None:
    """Disconnect a session, telling its user why."""
    with obj.admin() as admin:
        r = admin.Evict(
            admin_pb2.EvictRequest(session_id=session_id, reason=reason), timeout=TIMEOUT
        )
    click.echo(f"session {r.ended.session_id} disconnected: {r.ended.reason}")
