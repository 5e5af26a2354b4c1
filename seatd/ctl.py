"""`seatctl`: the administrator's command line, over the daemon's admin socket."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NoReturn

import click
import grpc
from rich.console import Console
from rich.table import Table
from seatclient.v1 import admin_pb2, admin_pb2_grpc, types_pb2

DEFAULT_SOCKET = Path("/run/seatd/admin.sock")
TIMEOUT = 10.0


class Ctx:
    def __init__(self, socket: Path) -> None:
        self.socket = socket

    @contextmanager
    def admin(self) -> Iterator[admin_pb2_grpc.AdminServiceStub]:
        with grpc.insecure_channel(f"unix:{self.socket}") as channel:
            try:
                yield admin_pb2_grpc.AdminServiceStub(channel)
            except grpc.RpcError as exc:
                fail_rpc(exc, self.socket)


def fail_rpc(exc: grpc.RpcError, socket: Path) -> NoReturn:
    code = exc.code()
    details = exc.details()
    if code is grpc.StatusCode.UNAVAILABLE and not socket.exists():
        msg = (
            f"cannot reach seatd: no admin socket at {socket}. Is the daemon running? "
            "(systemctl status seatd), or pass --socket PATH"
        )
    elif code is grpc.StatusCode.UNAVAILABLE and "connect" in (details or "").lower():
        msg = f"cannot reach seatd on {socket}: {details}. Is the daemon running?"
    else:
        msg = f"{details} ({code.name})"
    click.echo(f"seatctl: {msg}", err=True)
    sys.exit(1)


def _dt(ts: Any) -> datetime:
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, UTC)


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z")


def _hms(seconds: float) -> str:
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h} h {m:02d} m {s:02d} s" if h else f"{m:02d} m {s:02d} s"


def session_json(s: types_pb2.Session) -> dict[str, Any]:
    return {
        "id": s.id,
        "user_code": s.user_code,
        "user_name": s.user_name,
        "hostname": s.hostname,
        "ip": s.ip,
        "client_version": s.client_version,
        "started_at": _iso(_dt(s.started_at)),
        "duration_seconds": int(s.duration.seconds),
        "last_seen_at": _iso(_dt(s.last_seen_at)),
        "attached": s.attached,
    }


@click.group()
@click.option(
    "--socket",
    type=click.Path(path_type=Path),
    default=DEFAULT_SOCKET,
    envvar="SEATD_ADMIN_SOCKET",
    show_default=True,
    help="The daemon's admin socket.",
)
@click.pass_context
def main(ctx: click.Context, socket: Path) -> None:
    """Manage a running seatd."""
    ctx.obj = Ctx(socket)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.pass_obj
def sessions(obj: Ctx, as_json: bool) -> None:
    """List the open sessions."""
    with obj.admin() as admin:
        r = admin.ListSessions(admin_pb2.ListSessionsRequest(), timeout=TIMEOUT)
    now = _dt(r.server_time)
    local = now.astimezone(timezone(timedelta(seconds=r.server_utc_offset_seconds)))
    cap = r.seat_cap if r.HasField("seat_cap") else None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "cap": cap,
                    "in_use": r.in_use,
                    "server_time_utc": _iso(now),
                    "server_time_local": local.isoformat(timespec="seconds"),
                    "sessions": [session_json(s) for s in r.sessions],
                },
                indent=2,
            )
        )
        return
    table = Table(
        title=f"Open sessions: {r.in_use} in use of {cap if cap is not None else 'unlimited'}"
    )
    for col in (
        "Id",
        "User",
        "Name",
        "IP address",
        "Computer",
        "Started (local)",
        "Duration",
        "Last seen",
    ):
        table.add_column(col, justify="right" if col == "Id" else "left")
    offset = timedelta(seconds=r.server_utc_offset_seconds)
    for s in r.sessions:
        table.add_row(
            str(s.id),
            s.user_code,
            s.user_name,
            s.ip,
            s.hostname,
            (_dt(s.started_at) + offset).strftime("%d/%m/%Y %H:%M:%S"),
            _hms(s.duration.seconds),
            f"{int((now - _dt(s.last_seen_at)).total_seconds())} s ago",
        )
    console = Console()
    console.print(table)
    console.print(f"UTC time: {now:%H:%M:%S}   Local time ({r.server_timezone}): {local:%H:%M:%S}")


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
