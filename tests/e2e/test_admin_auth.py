"""Admin authentication and roles end to end: every role against every admin RPC, over the
local socket, tokens and mTLS; unauthenticated remote calls refused."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from seatclient.v1 import admin_pb2, admin_pb2_grpc

from seatd import auth
from tests.certs import make_client, make_tls
from tests.e2e.conftest import Daemon

pytestmark = pytest.mark.e2e

# One harmless call per AdminService RPC; allowed calls may still fail for other reasons
# (no cloud, nothing to evict), which is fine: only the role decision is under test.
CALLS: dict[str, Callable[[admin_pb2_grpc.AdminServiceStub, list[Any]], Any]] = {
    "ListSessions": lambda s, m: s.ListSessions(admin_pb2.ListSessionsRequest(), metadata=m),
    "Evict": lambda s, m: s.Evict(admin_pb2.EvictRequest(session_id=999), metadata=m),
    "GetLicence": lambda s, m: s.GetLicence(admin_pb2.AdminServiceGetLicenceRequest(), metadata=m),
    "ImportLicence": lambda s, m: s.ImportLicence(admin_pb2.ImportLicenceRequest(), metadata=m),
    "ClearLicence": lambda s, m: s.ClearLicence(admin_pb2.ClearLicenceRequest(), metadata=m),
    "LicenceHistory": lambda s, m: s.LicenceHistory(admin_pb2.LicenceHistoryRequest(), metadata=m),
    "SetActiveSeats": lambda s, m: s.SetActiveSeats(
        admin_pb2.SetActiveSeatsRequest(seats=1), metadata=m
    ),
    "SyncLicence": lambda s, m: s.SyncLicence(admin_pb2.SyncLicenceRequest(), metadata=m),
    "OrderSeats": lambda s, m: s.OrderSeats(admin_pb2.OrderSeatsRequest(seats=1), metadata=m),
    "ReadJournal": lambda s, m: s.ReadJournal(admin_pb2.ReadJournalRequest(), metadata=m),
    "WatchJournal": lambda s, m: next(
        s.WatchJournal(admin_pb2.WatchJournalRequest(), metadata=m, timeout=5)
    ),
    "VerifyJournal": lambda s, m: s.VerifyJournal(admin_pb2.VerifyJournalRequest(), metadata=m),
    "CreateToken": lambda s, m: s.CreateToken(
        admin_pb2.CreateTokenRequest(name=f"t-{len(m)}-{id(m)}", role="viewer"), metadata=m
    ),
    "ListTokens": lambda s, m: s.ListTokens(admin_pb2.ListTokensRequest(), metadata=m),
    "Backup": lambda s, m: next(iter(s.Backup(admin_pb2.BackupRequest(), metadata=m))),
    "CreateConsoleLink": lambda s, m: s.CreateConsoleLink(
        admin_pb2.CreateConsoleLinkRequest(), metadata=m
    ),
    "RevokeToken": lambda s, m: s.RevokeToken(
        admin_pb2.RevokeTokenRequest(name="nobody"), metadata=m
    ),
}


def outcome(stub: admin_pb2_grpc.AdminServiceStub, rpc: str, metadata: list[Any]) -> str:
    try:
        CALLS[rpc](stub, metadata)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
            return code.name
    return "allowed"


def start_remote(make_daemon: Callable[..., Daemon], certs: Path, mtls: bool) -> Daemon:
    ca, cert, key = make_tls(certs)
    config = certs / "seatd.toml"
    lines = ["[admin]", 'listen = "127.0.0.1:0"', f'tls_cert = "{cert}"', f'tls_key = "{key}"']
    if mtls:
        lines += [
            f'client_ca = "{ca}"',
            "[admin.identities]",
            '"alice" = "admin"',
            '"bob" = "viewer"',
        ]
    config.write_text("\n".join(lines) + "\n")
    daemon = make_daemon("--config", str(config))
    found = re.search(r"admin_listen=127\.0\.0\.1:(\d+)", daemon.log_path.read_text())
    assert found, daemon.log_path.read_text()
    daemon.admin_port = int(found.group(1))  # type: ignore[attr-defined]
    return daemon


@pytest.fixture
def remote(make_daemon: Callable[..., Daemon], tmp_path: Path) -> tuple[Daemon, Path]:
    """Remote admin over TLS with tokens."""
    return start_remote(make_daemon, tmp_path, mtls=False), tmp_path


@pytest.fixture
def remote_mtls(make_daemon: Callable[..., Daemon], tmp_path: Path) -> tuple[Daemon, Path]:
    """Remote admin over mTLS: client certificates required and verified."""
    return start_remote(make_daemon, tmp_path, mtls=True), tmp_path


def channel(daemon: Daemon, certs: Path, client: str | None = None) -> grpc.Channel:
    cert_chain = key = None
    if client:
        cert_path, key_path = make_client(certs, client)
        cert_chain, key = cert_path.read_bytes(), key_path.read_bytes()
    creds = grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes(), key, cert_chain)
    return grpc.secure_channel(f"127.0.0.1:{daemon.admin_port}", creds)  # type: ignore[attr-defined]


def test_every_role_against_every_rpc_with_tokens(remote: tuple[Daemon, Path]) -> None:
    """Tokens of each role, created over the local socket, get exactly the table's RPCs;
    every refusal is PERMISSION_DENIED and is journaled (repeats by one actor as a count,
    written at the latest when the daemon stops)."""
    daemon, certs = remote
    tokens = {}
    for role in auth.ROLES:
        out = daemon.ctl("token", "create", "--role", role, "--name", f"{role}-token")
        assert out.returncode == 0, out.stderr
        tokens[role] = out.stdout.strip()
    with channel(daemon, certs) as ch:
        stub = admin_pb2_grpc.AdminServiceStub(ch)
        for role, token in tokens.items():
            for rpc in CALLS:
                got = outcome(stub, rpc, [("authorization", f"Bearer {token}")])
                expected = "allowed" if role in auth.TABLE[rpc] else "PERMISSION_DENIED"
                assert got == expected, f"{role} calling {rpc}: {got}"
    assert daemon.stop() == 0
    daemon.start()
    denied = [
        json.loads(line)
        for line in daemon.ctl("journal", "--json", "--kind", "denied").stdout.splitlines()
    ]
    expected_denials = sum(1 for r in auth.ROLES for rpc in CALLS if r not in auth.TABLE[rpc])
    # A first denial is one entry; a later entry of the same actor counts its repeats.
    assert sum(e.get("repeated") or 1 for e in denied) == expected_denials
    assert all(e["reason"].startswith(e["rpc"]) for e in denied)


def test_mtls_identities_get_their_mapped_roles(remote_mtls: tuple[Daemon, Path]) -> None:
    """A client certificate's CN is the identity: alice is admin, bob viewer, mallory nobody;
    without a certificate there is no connection at all."""
    daemon, certs = remote_mtls
    with channel(daemon, certs, "alice") as ch:
        stub = admin_pb2_grpc.AdminServiceStub(ch)
        assert outcome(stub, "Evict", []) == "allowed"
        assert outcome(stub, "SetActiveSeats", []) == "PERMISSION_DENIED"
    with channel(daemon, certs, "bob") as ch:
        stub = admin_pb2_grpc.AdminServiceStub(ch)
        assert outcome(stub, "ListSessions", []) == "allowed"
        assert outcome(stub, "Evict", []) == "PERMISSION_DENIED"
    with channel(daemon, certs, "mallory") as ch:
        assert outcome(admin_pb2_grpc.AdminServiceStub(ch), "ListSessions", []) == (
            "UNAUTHENTICATED"
        )
    with channel(daemon, certs) as ch, pytest.raises(grpc.RpcError) as refused:
        admin_pb2_grpc.AdminServiceStub(ch).ListSessions(admin_pb2.ListSessionsRequest(), timeout=5)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


def test_unauthenticated_remote_calls_are_refused(remote: tuple[Daemon, Path]) -> None:
    """Over TCP with neither certificate nor valid token, every call is UNAUTHENTICATED;
    a revoked token stops working at once."""
    daemon, certs = remote
    token = daemon.ctl("token", "create", "--role", "owner", "--name", "temp").stdout.strip()
    with channel(daemon, certs) as ch:
        stub = admin_pb2_grpc.AdminServiceStub(ch)
        assert outcome(stub, "ListSessions", []) == "UNAUTHENTICATED"
        assert outcome(stub, "ListSessions", [("authorization", "Bearer sdt_forged")]) == (
            "UNAUTHENTICATED"
        )
        assert outcome(stub, "ListSessions", [("authorization", f"Bearer {token}")]) == "allowed"
        assert daemon.ctl("token", "revoke", "temp").returncode == 0
        assert outcome(stub, "ListSessions", [("authorization", f"Bearer {token}")]) == (
            "UNAUTHENTICATED"
        )


def test_seatctl_remote_with_a_token(remote: tuple[Daemon, Path]) -> None:
    """seatctl --remote with a viewer token lists sessions, and is refused an eviction with
    the role it needs."""
    daemon, certs = remote
    token = daemon.ctl("token", "create", "--role", "viewer", "--name", "ops").stdout.strip()
    base = [
        "--remote",
        f"127.0.0.1:{daemon.admin_port}",
        "--ca",
        str(certs / "ca.pem"),  # type: ignore[attr-defined]
        "--token",
        token,
    ]
    import subprocess

    from tests.e2e.conftest import BIN

    listed = subprocess.run(
        [str(BIN / "seatctl"), *base, "sessions", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert listed.returncode == 0, listed.stderr
    refused = subprocess.run(
        [str(BIN / "seatctl"), *base, "evict", "1"], capture_output=True, text=True, timeout=30
    )
    assert refused.returncode == 1
    assert "owner or admin" in refused.stderr and "PERMISSION_DENIED" in refused.stderr


def test_workstations_over_tls(make_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    """With server.tls_cert/tls_key, workstations hold seats over TLS; plaintext is refused."""
    import grpc as grpc_module
    from seatclient import DaemonUnavailable, SeatClient

    ca, cert, key = make_tls(tmp_path)
    config = tmp_path / "tls.toml"
    config.write_text(f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    daemon = make_daemon("--config", str(config))
    creds = grpc_module.ssl_channel_credentials(ca.read_bytes())
    with SeatClient(daemon.target, credentials=creds) as client:
        client.acquire(user_code="AA").release()
    with SeatClient(daemon.target, timeout=1) as plain, pytest.raises(DaemonUnavailable):
        plain.acquire(user_code="BB")
