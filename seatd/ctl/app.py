"""The root of `seatctl`: its options, and the admin channel every command group uses."""

from __future__ import annotations

import dataclasses
import getpass
import grp
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, cast

import click
import grpc
from seatclient.contract import Reason
from seatclient.errors import detail_of
from seatclient.v1 import admin_pb2_grpc

from seatd.auth import USER_KEY
from seatd.ctl.leader import EXIT_NOT_LEADER, Following, standby_message

DEFAULT_SOCKET = Path("/run/seatd/admin.sock")
TIMEOUT = 10.0
# A long call (journal --follow) learns within 15 s that its daemon froze or its host went
# away (no FIN, no RST): a ping every 10 s (the daemon refuses them closer than 5 s apart)
# for as long as the call waits in silence (grpc stops after two by default), answered
# within 5 s (grpc 1.85 waits for the answer `ping_timeout_ms`, 60 s by default, whatever
# the keepalive timeout says: measured 60-70 s without it, 10-15 s with it).
KEEPALIVE = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.ping_timeout_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
)


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
    """Remote administration over TLS: a CA, and a client certificate or a token, for one
    target or several (a cluster's instances: seatctl follows the leader among them)."""

    targets: tuple[str, ...]
    ca: Path | None
    cert: Path | None
    key: Path | None
    token: str
    # The target a call went to last (for the messages).
    target: str = ""

    def at(self, target: str) -> Remote:
        return dataclasses.replace(self, target=target)

    def channel(self, target: str) -> grpc.Channel:
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
        return grpc.secure_channel(target, creds, options=KEEPALIVE)

    def open(self, target: str) -> tuple[grpc.Channel, admin_pb2_grpc.AdminServiceStub]:
        channel = self.channel(target)
        metadata = [("authorization", f"Bearer {self.token}")] if self.token else []
        stub = admin_pb2_grpc.AdminServiceStub(
            grpc.intercept_channel(channel, _WithMetadata(metadata))
        )
        return channel, stub


class Ctx:
    def __init__(self, socket: Path, remote: Remote | None = None) -> None:
        self.socket = socket
        self.remote = remote

    @contextmanager
    def admin(self) -> Iterator[admin_pb2_grpc.AdminServiceStub]:
        if self.remote is not None:
            following = Following(self.remote.targets, self.remote.open)
            try:
                # The stub's methods, following the leader among the targets.
                yield cast(admin_pb2_grpc.AdminServiceStub, following)
            except grpc.RpcError as exc:
                fail_rpc(exc, self.socket, self.remote.at(following.target))
            finally:
                following.close()
            return
        channel = grpc.insecure_channel(f"unix:{self.socket}", options=KEEPALIVE)
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
    if detail.reason == Reason.NOT_LEADER:
        where = remote.target if remote is not None else f"the admin socket {socket}"
        click.echo(f"seatctl: {standby_message(detail, where)}", err=True)
        sys.exit(EXIT_NOT_LEADER)
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
    help="HOST:PORT[,HOST:PORT...] of a remote daemon's admin listener (TLS); a cluster's "
    "instances: seatctl follows the leader among them.",
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
    targets = tuple(t.strip() for t in (remote or "").split(",") if t.strip())
    ctx.obj = Ctx(socket, Remote(targets, ca, cert, key, token) if targets else None)
