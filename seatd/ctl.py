"""`seatctl`: the administrator's command line, over the daemon's admin socket."""

from __future__ import annotations

import csv
import getpass
import grp
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NoReturn

import click
import grpc
from seatclient.errors import detail_of
from seatclient.v1 import admin_pb2, admin_pb2_grpc, types_pb2

from seatd import filemodes, integrity, tables, usage
from seatd.auth import ROLES, USER_KEY
from seatd.clock import SystemClock
from seatd.errors import StateError

DEFAULT_SOCKET = Path("/run/seatd/admin.sock")
TIMEOUT = 10.0


class _WithMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds the same metadata to every call."""

    def __init__(self, metadata: list[tuple[str, str]]) -> None:
        self.metadata = metadata

    def _details(self, details: Any) -> Any:
        return details._replace(metadata=[*(details.metadata or ()), *self.metadata])

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)


@dataclass(frozen=True)
class Remote:
    """Remote administration over TLS: a CA, and a client certificate or a token."""

    target: str
    ca: Path | None
    cert: Path | None
    key: Path | None
    token: str

    def channel(self) -> grpc.Channel:
        def read(path: Path | None) -> bytes | None:
            try:
                return path.read_bytes() if path else None
            except OSError as exc:
                raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None

        creds = grpc.ssl_channel_credentials(
            root_certificates=read(self.ca),
            private_key=read(self.key),
            certificate_chain=read(self.cert),
        )
        return grpc.secure_channel(self.target, creds)


class Ctx:
    def __init__(self, socket: Path, remote: Remote | None = None) -> None:
        self.socket = socket
        self.remote = remote

    @contextmanager
    def admin(self) -> Iterator[admin_pb2_grpc.AdminServiceStub]:
        if self.remote is not None:
            channel = self.remote.channel()
            metadata = (
                [("authorization", f"Bearer {self.remote.token}")] if self.remote.token else []
            )
        else:
            channel = grpc.insecure_channel(f"unix:{self.socket}")
            # Who runs seatctl, for the journal (the socket's mode is the access control).
            metadata = [(USER_KEY, getpass.getuser())]
        with channel:
            try:
                stub = admin_pb2_grpc.AdminServiceStub(
                    grpc.intercept_channel(channel, _WithMetadata(metadata))
                )
                yield stub
            except grpc.RpcError as exc:
                fail_rpc(exc, self.socket, self.remote)


# What grpc's UNAVAILABLE details say when the TLS handshake, not the network, failed.
_TLS_FAILURES = ("ssl", "tls", "handshake", "certificate")


def _unreachable_remote(exc: grpc.RpcError, remote: Remote) -> str:
    details = str(exc.details() or "")
    # grpc's details end with the OS's or the TLS library's own words: "Connection refused".
    last = details.rpartition(": ")[2].rstrip("].") or "no detail"
    if exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"cannot reach seatd at {remote.target}: no answer within {TIMEOUT:g} s"
    if any(word in details.lower() for word in _TLS_FAILURES):
        if "CERTIFICATE_VERIFY_FAILED" in details:
            last = "its certificate is not trusted"
        ca = (
            f"is {remote.ca} the CA that signed the daemon's [admin] tls_cert?"
            if remote.ca
            else "pass --ca CA.pem, the CA that signed the daemon's [admin] tls_cert"
        )
        return f"cannot reach seatd at {remote.target}: the TLS handshake failed ({last}); {ca}"
    return (
        f"cannot reach seatd at {remote.target}: {last}. "
        "Is the daemon running, with [admin] listen on that address?"
    )


def socket_problem(socket: Path) -> str | None:
    """Why this user cannot use the admin socket, when the file system already says so."""
    try:
        socket.stat()
        if os.access(socket, os.R_OK | os.W_OK):
            return None
    except FileNotFoundError:
        return (
            f"cannot reach seatd: no admin socket at {socket}. Is the daemon running? "
            "(systemctl status seatd), or pass --socket PATH"
        )
    except PermissionError:
        pass
    # The socket (0660) and its directory (0750) belong to the daemon's group.
    try:
        group = grp.getgrgid(socket.parent.stat().st_gid).gr_name
    except (OSError, KeyError):
        group = "seatd-admin"
    return (
        f"permission denied on the admin socket {socket}: run seatctl as a member of the "
        f"group {group} (sudo usermod -aG {group} $USER, then log in again) or as root"
    )


def fail_rpc(exc: grpc.RpcError, socket: Path, remote: Remote | None = None) -> NoReturn:
    code = exc.code()
    detail = detail_of(exc)
    if detail.reason:
        # The daemon answered: its message says what happened and what to do.
        msg = f"{detail.message} ({detail.reason})"
    elif remote is not None and code in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    ):
        msg = _unreachable_remote(exc, remote)
    elif code is grpc.StatusCode.UNAVAILABLE and (problem := socket_problem(socket)):
        msg = problem
    elif code is grpc.StatusCode.UNAVAILABLE:
        msg = f"cannot reach seatd on {socket}: {exc.details()}. Is the daemon running?"
    else:
        msg = f"{exc.details()} ({code.name})"
    click.echo(f"seatctl: {msg}", err=True)
    sys.exit(1)


def _dt(ts: Any) -> datetime:
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, UTC)


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z")


def _spaced(iso: str) -> str:
    """An ISO time for a table: a space before the time, so a narrow column wraps it there."""
    return iso.replace("T", " ", 1)


def _clock(seconds: float) -> str:
    """A duration as h:mm:ss, short enough for a table column."""
    h, rem = divmod(int(seconds), 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}"


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
    show_envvar=True,
    show_default=True,
    help="The daemon's admin socket (`make run` prints the export line for its own).",
)
@click.option(
    "--remote",
    envvar="SEATD_REMOTE",
    show_envvar=True,
    help="HOST:PORT of a remote daemon (TLS).",
)
@click.option(
    "--ca",
    type=click.Path(path_type=Path),
    envvar="SEATD_CA",
    show_envvar=True,
    help="CA certificate of the remote daemon.",
)
@click.option("--cert", type=click.Path(path_type=Path), help="Client certificate (mTLS).")
@click.option("--key", type=click.Path(path_type=Path), help="Client certificate's key.")
@click.option(
    "--token",
    envvar="SEATD_TOKEN",
    show_envvar=True,
    default="",
    help="Admin token (seatctl token create).",
)
@click.pass_context
def main(
    ctx: click.Context,
    socket: Path,
    remote: str | None,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
    token: str,
) -> None:
    """Manage a running seatd."""
    ctx.obj = Ctx(socket, Remote(remote, ca, cert, key, token) if remote else None)


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
    # Two lines a session (code over name, computer over IP, date over time) fit eight
    # fields in 80 columns without cutting any of them.
    table = tables.table(
        tables.column("Id", justify="right", no_wrap=True),
        "User",
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
            f"{s.user_code}\n{s.user_name}",
            f"{s.hostname}\n{s.ip}",
            (_dt(s.started_at) + offset).strftime("%d/%m/%Y %H:%M:%S"),
            _clock(s.duration.seconds),
            f"{int((now - _dt(s.last_seen_at)).total_seconds())} s ago",
        )
    tables.show(
        table,
        f"UTC time: {now:%H:%M:%S}   Local time ({r.server_timezone}): {local:%H:%M:%S}",
    )


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


def _name(enum_type: Any, value: int, prefix: str) -> str:
    return str(enum_type.Name(value)).removeprefix(prefix).lower()


def licence_json(d: types_pb2.LicenceDetail) -> dict[str, Any]:
    s = d.summary
    status = _name(types_pb2.LicenceStatus, s.status, "LICENCE_STATUS_")
    has_licence = bool(s.serial)
    return {
        "base_id": s.base_id,
        "status": status,
        "edition": _name(types_pb2.Edition, s.edition, "EDITION_"),
        "mode": _name(types_pb2.Mode, s.mode, "MODE_"),
        "period": _name(types_pb2.Period, s.period, "PERIOD_") if has_licence else None,
        "seats_purchased": s.seats_purchased if has_licence else None,
        "seats_active": s.seat_cap if s.HasField("seat_cap") else None,
        "in_use": d.in_use,
        "valid_until": _dt(s.valid_until).date().isoformat() if has_licence else None,
        "days_left": s.days_left if has_licence else None,
        "grace_days_left": s.grace_days_left,
        "auto_renew": s.auto_renew,
        "order_url": s.order_url or None,
        "features": list(s.features),
        "serial": s.serial or None,
        "licensee": {
            "company": d.licensee.company,
            "contact": d.licensee.contact,
            "address": d.licensee.address,
            "postcode": d.licensee.postcode,
            "city": d.licensee.city,
            "country": d.licensee.country,
            "email": d.licensee.email,
        },
        "trusted_time": _iso(_dt(d.trusted_time)),
        "clock_rollback": d.clock_rollback,
        "note": d.note,
        "cloud_url": d.cloud_url or None,
        "last_sync": _iso(_dt(d.last_sync)) if d.HasField("last_sync") else None,
        "failed_syncs": d.failed_syncs,
        "next_sync": _iso(_dt(d.next_sync)) if d.HasField("next_sync") else None,
        "last_sync_error": d.last_sync_error or None,
        "latest_client_version": d.latest_client_version or None,
        "transferred_to": d.transferred_to or None,
        "transferred_at": _iso(_dt(d.transferred_at)) if d.transferred_to else None,
        "next_serial": d.next_serial or None,
        "next_valid_from": _dt(d.next_valid_from).date().isoformat() if d.next_serial else None,
    }


def print_licence(d: types_pb2.LicenceDetail) -> None:
    j = licence_json(d)
    grid = tables.grid()
    who = d.licensee
    if j["serial"]:
        place = ", ".join(
            x
            for x in (
                who.contact,
                who.address,
                f"{who.postcode} {who.city}".strip(),
                who.country,
                who.email,
            )
            if x
        )
        grid.add_row("Licensed to", f"{who.company}" + (f" ({place})" if place else ""))
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
            "at": _iso(_dt(e.at)),
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
            _spaced(str(row["at"])),
            row["serial"] or "(cleared)",
            row["source"],
            row["by"],
            row["previous_serial"] or "-",
        )
    tables.show(table)


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


_RELATIVE = {"m": 60, "h": 3600, "d": 86400}


def parse_when(value: str, now: datetime) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), or a span back from now: 30m, 24h, 7d."""
    text = value.strip()
    if text[:-1].isdigit() and text[-1:] in _RELATIVE:
        return now - timedelta(seconds=int(text[:-1]) * _RELATIVE[text[-1]])
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: use an ISO date or time (2026-11-22, 2026-11-22T08:00) or 30m, 24h, 7d"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def entry_json(e: admin_pb2.JournalEntry) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(e.json)
    out: dict[str, Any] = {
        "seq": e.seq,
        "at": stored.get("at"),
        "kind": e.kind,
        "session_id": e.session_id or None,
        "user_code": e.user_code or None,
        "actor": e.actor,
    }
    if "reason" in stored:
        out["reason"] = stored["reason"]
    skip = {"prev", "hash"}
    out.update({k: v for k, v in stored.items() if k not in out and k not in skip})
    return out


def _actor(j: dict[str, Any]) -> str:
    """The actor, with what was only claimed marked as such."""
    if j.get("claimed_user"):
        return f"{j['actor']} ({j['claimed_user']}, claimed)"
    if j.get("by_claimed"):
        return f"{j['actor']} (claimed)"
    return str(j["actor"])


def _detail(j: dict[str, Any]) -> str:
    if j.get("repeated"):
        return f"{j.get('reason') or j['kind']} (x{j['repeated']} more since {j.get('since')})"
    if j.get("reason"):
        return str(j["reason"])
    for key in ("serial", "detail"):
        if j.get(key):
            return str(j[key])
    if j["kind"] == "active_seats_changed":
        return f"{j.get('old')} -> {j.get('new')}"
    return ""


def _journal_filter(
    since: str | None,
    until: str | None,
    user: str | None,
    session: int | None,
    kinds: tuple[str, ...],
) -> admin_pb2.JournalFilter:
    now = SystemClock().wall()
    f = admin_pb2.JournalFilter(user_code=user or "", session_id=session or 0, kinds=list(kinds))
    if since:
        f.since.FromDatetime(parse_when(since, now))
    if until:
        f.until.FromDatetime(parse_when(until, now))
    return f


@main.group(invoke_without_command=True)
@click.option("--follow", "-f", is_flag=True, help="Keep printing entries as they are written.")
@click.option("--since", help="ISO date or time, or 30m / 24h / 7d back from now.")
@click.option("--until", help="ISO date or time, or 30m / 24h / 7d back from now.")
@click.option("--user", help="Only this user code.")
@click.option("--session", type=int, help="Only this session id.")
@click.option("--kind", "kinds", multiple=True, help="Only this kind (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def journal(
    ctx: click.Context,
    follow: bool,
    since: str | None,
    until: str | None,
    user: str | None,
    session: int | None,
    kinds: tuple[str, ...],
    as_json: bool,
) -> None:
    """The session journal: who got, lost or was refused a seat, who evicted whom and why."""
    if ctx.invoked_subcommand is not None:
        return
    obj: Ctx = ctx.obj
    keep = _journal_filter(since, until, user, session, kinds)
    table = (
        None
        if as_json
        else tables.table(
            tables.column("Seq", justify="right", no_wrap=True),
            tables.column("When (UTC)", min_width=10, max_width=10),
            "Kind",
            tables.column("Session", justify="right"),
            "User",
            "By",
            "Reason / detail",
            title="Session journal",
        )
    )

    def show(entry: admin_pb2.JournalEntry) -> None:
        j = entry_json(entry)
        if table is None:
            click.echo(json.dumps(j, ensure_ascii=False))
        else:
            table.add_row(
                str(j["seq"]),
                _spaced(str(j["at"])),
                j["kind"],
                str(j["session_id"] or ""),
                j["user_code"] or "",
                _actor(j),
                _detail(j),
            )

    after = 0
    with obj.admin() as admin:
        while True:
            page = admin.ReadJournal(
                admin_pb2.ReadJournalRequest(after_seq=after, limit=1000, filter=keep),
                timeout=TIMEOUT,
            )
            for entry in page.entries:
                show(entry)
            after = page.next_after_seq
            if not page.more:
                break
        if table is not None:
            tables.show(table)
        if not follow:
            return
        try:
            for update in admin.WatchJournal(
                admin_pb2.WatchJournalRequest(after_seq=after, filter=keep)
            ):
                j = entry_json(update.entry)
                if as_json:
                    click.echo(json.dumps(j, ensure_ascii=False))
                else:
                    click.echo(
                        f"{j['seq']:>6}  {j['at']}  {j['kind']:<20} "
                        f"{j['session_id'] or '':>6}  {j['user_code'] or '':<8} "
                        f"{_actor(j):<12} {_detail(j)}"
                    )
        except KeyboardInterrupt:
            return


@journal.command("verify")
@click.pass_obj
def journal_verify(obj: Ctx) -> None:
    """Check the hash chain; exit 1 naming the first broken entry."""
    with obj.admin() as admin:
        r = admin.VerifyJournal(admin_pb2.VerifyJournalRequest(), timeout=120)
    if r.intact:
        click.echo(f"journal intact: {r.entries} entries, chain verified up to seq {r.last_seq}")
        return
    click.echo(
        f"journal BROKEN at seq {r.first_broken_seq}: that entry (or the one before it) "
        "was altered or removed",
        err=True,
    )
    sys.exit(1)


@journal.command("export")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def journal_export(obj: Ctx, file: Path) -> None:
    """Write every entry as JSON lines, exactly as stored (hashes included)."""
    count, after = 0, 0
    with obj.admin() as admin, file.open("w", encoding="utf-8") as out:
        while True:
            page = admin.ReadJournal(
                admin_pb2.ReadJournalRequest(after_seq=after, limit=1000), timeout=TIMEOUT
            )
            for entry in page.entries:
                out.write(entry.json + "\n")
                count += 1
            after = page.next_after_seq
            if not page.more:
                break
    click.echo(f"exported {count} entries to {file}")


def _all_entries(admin: admin_pb2_grpc.AdminServiceStub) -> list[dict[str, Any]]:
    entries, after = [], 0
    while True:
        page = admin.ReadJournal(
            admin_pb2.ReadJournalRequest(after_seq=after, limit=1000), timeout=TIMEOUT
        )
        entries += [json.loads(e.json) for e in page.entries]
        after = page.next_after_seq
        if not page.more:
            return entries


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
    now = _dt(listed.server_time)
    tz = timezone(timedelta(seconds=listed.server_utc_offset_seconds))
    first = now.astimezone(tz).date() - timedelta(days=days - 1)
    rows = usage.daily(entries, first=first, days=days, now=now, tz=tz)
    if as_json:
        click.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["day", "peak_sessions", "seat_hours", "refusals", "evictions"])
        for r in rows:
            j = r.as_json()
            writer.writerow(
                [j["day"], j["peak_sessions"], j["seat_hours"], j["refusals"], j["evictions"]]
            )
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
    now = _dt(listed.server_time)
    started = _dt(listed.daemon_started_at)
    uptime = int((now - started).total_seconds())
    j = licence_json(lic.licence)
    summary: dict[str, Any] = {
        "daemon_version": listed.daemon_version,
        "started_at": _iso(started),
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
        f"seatd {listed.daemon_version}, up {_hms(uptime)}",
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
            table.add_row(str(s.id), s.user_code, s.user_name, s.hostname, _hms(s.duration.seconds))
        tables.show(table)


@main.group()
def token() -> None:
    """Tokens for remote administration (owner or admin)."""


@token.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", required=True, help="Who or what the token is for.")
@click.pass_obj
def token_create(obj: Ctx, role: str, name: str) -> None:
    """Create a token; it is shown once and only its hash is kept."""
    with obj.admin() as admin:
        r = admin.CreateToken(admin_pb2.CreateTokenRequest(name=name, role=role), timeout=TIMEOUT)
    click.echo(r.token)
    click.echo(f"token {name!r} ({role}) created: copy it now, it cannot be shown again", err=True)


@token.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def token_list(obj: Ctx, as_json: bool) -> None:
    """Every token: name, role, who created it, revoked or not."""
    with obj.admin() as admin:
        r = admin.ListTokens(admin_pb2.ListTokensRequest(), timeout=TIMEOUT)
    rows = [
        {
            "name": t.name,
            "role": t.role,
            "created_by": t.created_by,
            "created_at": _iso(_dt(t.created_at)),
            "revoked_at": _iso(_dt(t.revoked_at)) if t.HasField("revoked_at") else None,
        }
        for t in r.tokens
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = tables.table(
        "Name",
        "Role",
        "Created by",
        tables.column("Created (UTC)", min_width=10),
        tables.column("Revoked", min_width=10),
        title="Admin tokens",
    )
    for row in rows:
        table.add_row(
            row["name"],
            row["role"],
            row["created_by"],
            _spaced(str(row["created_at"])),
            _spaced(str(row["revoked_at"])) if row["revoked_at"] else "-",
        )
    tables.show(table)


@token.command("revoke")
@click.argument("name")
@click.pass_obj
def token_revoke(obj: Ctx, name: str) -> None:
    """Revoke a token at once."""
    with obj.admin() as admin:
        admin.RevokeToken(admin_pb2.RevokeTokenRequest(name=name), timeout=TIMEOUT)
    click.echo(f"token {name!r} revoked")


@main.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def backup(obj: Ctx, file: Path) -> None:
    """A consistent copy of the daemon's state while it runs, verified once written (every
    page read, every record decoded, the hash chain checked); restore with `seatd restore`."""
    size = 0
    partial = file.with_name(file.name + ".partial")
    try:
        # The whole state (tokens, journal): readable by whoever runs seatctl backup only.
        fd = filemodes.write_private(partial)
    except OSError as exc:
        raise click.ClickException(
            f"cannot write the backup to {file}: {exc.strerror or exc}; choose a directory "
            "you can write to"
        ) from None
    with obj.admin() as admin, os.fdopen(fd, "wb") as out:
        for part in admin.Backup(admin_pb2.BackupRequest(), timeout=600):
            out.write(part.chunk)
            size += len(part.chunk)
    try:
        report = integrity.check_backup(partial)
    except StateError as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(
            f"the copy did not verify, so no backup was written to {file}: {exc}"
        ) from None
    partial.replace(file)
    click.echo(f"backup written to {file} ({size} bytes) and verified: {report.summary()}")
