"""The vendor's cloud and the daemon's sync, as two real processes over TLS on loopback."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from seatclient import LicenceChanged, SeatClient, SeatEvent, SeatsExhausted

from seatd.cloud.v1 import cloud_pb2, cloud_pb2_grpc
from tests.certs import make_tls
from tests.e2e.conftest import BIN, Daemon, wait_for

pytestmark = pytest.mark.e2e

READY = re.compile(r"event=cloud\.ready listen=[\d.]+:(\d+)")


def run(tool: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, timeout=60)
    if ok:
        assert out.returncode == 0, out.stderr
    return out


@dataclass
class Cloud:
    state_dir: Path
    key: Path
    public: Path
    tls: tuple[Path, Path, Path]
    log: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    flags: tuple[str, ...] = ()

    def start(self) -> Cloud:
        _, cert, key = self.tls
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    str(BIN / "seatd-cloud"),
                    "serve",
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--state-dir",
                    str(self.state_dir),
                    "--signing-key",
                    str(self.key),
                    "--tls-cert",
                    str(cert),
                    "--tls-key",
                    str(key),
                    "--payment-token",
                    "pay-token",
                    *self.flags,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def ready() -> int | None:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"seatd-cloud exited:\n{self.log.read_text()}")
            found = READY.findall(self.log.read_text())
            return int(found[-1]) if len(found) >= self.starts else None

        self.starts += 1
        self.port = wait_for(ready, 20, "cloud.ready")
        return self

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)

    def admin(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return run("seatd-cloud", *args[:1], "--state-dir", str(self.state_dir), *args[1:], ok=ok)


def keypair(directory: Path, kid: str) -> tuple[Path, Path]:
    private, public = directory / f"{kid}.key", directory / f"{kid}.pub"
    run(
        "seatd-vendor",
        "keygen",
        "--out-private",
        str(private),
        "--out-public",
        str(public),
        "--key-id",
        kid,
    )
    return private, public


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    private, public = keypair(tmp_path, "vendor-a")
    c = Cloud(tmp_path / "cloud", private, public, make_tls(tmp_path), tmp_path / "cloud.log")
    c.start()
    yield c
    if c.proc is not None and c.proc.poll() is None:
        c.proc.kill()
        c.proc.wait(10)


def licence(daemon: Daemon) -> dict[str, object]:
    out = daemon.ctl("licence", "show", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def synced_daemon(make_daemon: Callable[..., Daemon], cloud: Cloud) -> Daemon:
    return make_daemon(
        "--trusted-key",
        str(cloud.public),
        "--cloud-url",
        f"127.0.0.1:{cloud.port}",
        "--cloud-ca",
        str(cloud.tls[0]),
    )


CODE = re.compile(r"registration code for \d+: ([A-Z2-7-]+) ")


def subscribe(cloud: Cloud, base_id: str, seats: int = 2) -> str:
    """A paid subscription; returns the registration code `subscribe` prints."""
    out = cloud.admin(
        "subscribe",
        "--signing-key",
        str(cloud.key),
        "--base-id",
        base_id,
        "--company",
        "ANYWAY SARL",
        "--country",
        "FR",
        "--edition",
        "ENTERPRISE",
        "--mode",
        "LOCAL",
        "--period",
        "ANNUAL",
        "--seats",
        str(seats),
        "--paid",
    )
    return CODE.search(out.stdout).group(1)  # type: ignore[union-attr]


def register(daemon: Daemon, code: str) -> None:
    out = daemon.ctl("licence", "register", code)
    assert out.returncode == 0, out.stderr


def test_sync_installs_the_licence_and_paid_extra_seats_raise_the_cap(
    make_daemon: Callable[..., Daemon], cloud: Cloud
) -> None:
    """A paid subscription reaches the daemon by sync; an extra seat ordered from seatctl and
    marked paid by the vendor raises the cap at the next sync, and clients are told."""
    daemon = synced_daemon(make_daemon, cloud)
    base_id = str(licence(daemon)["base_id"])
    wait_for(lambda: licence(daemon)["last_sync"], 10, "the first sync at start")
    code = subscribe(cloud, base_id)
    assert daemon.stop() == 0
    config = daemon.state_dir.parent / "seatd.toml"
    config.write_text(f'[cloud]\nregistration_code = "{code}"\n')
    daemon.flags += ["--config", str(config)]
    daemon.start()
    wait_for(lambda: licence(daemon)["status"] == "valid", 10, "the licence from the sync")
    assert licence(daemon)["seats_active"] == 2

    told = threading.Event()

    def on_event(event: SeatEvent) -> None:
        if isinstance(event, LicenceChanged) and event.licence.seat_cap == 3:
            told.set()

    with SeatClient(daemon.target) as client:
        a = client.acquire(user_code="AA", on_event=on_event)
        b = client.acquire(user_code="BB")
        with pytest.raises(SeatsExhausted):
            client.acquire(user_code="CC")
        wait_for(lambda: all(s["attached"] for s in daemon.sessions()["sessions"]), 5, "attached")
        ordered = daemon.ctl("seats", "order", "1")
        assert ordered.returncode == 0, ordered.stderr
        order_id = re.search(r"order (O-\d+)", ordered.stdout).group(1)  # type: ignore[union-attr]
        assert "pending" in ordered.stdout and "days left" in ordered.stdout
        cloud.admin("mark-paid", "--signing-key", str(cloud.key), order_id)
        assert daemon.ctl("licence", "sync").returncode == 0
        assert told.wait(2), "clients not told of the raised cap"
        assert licence(daemon)["seats_active"] == 3
        client.acquire(user_code="CC").release()
        a.release()
        b.release()


def test_early_renewal_is_kept_and_installed_on_its_day_with_the_cloud_gone(
    make_daemon: Callable[..., Daemon], cloud: Cloud
) -> None:
    """A renewal paid a year early: the sync still succeeds and keeps it; with the cloud
    stopped and the clock on its start date, the restarted daemon installs it by itself."""
    daemon = synced_daemon(make_daemon, cloud)
    base_id = str(licence(daemon)["base_id"])
    register(daemon, subscribe(cloud, base_id))
    in_force = licence(daemon)
    renewal = cloud.admin("renew", "--base-id", base_id)
    order_id = re.search(r"order (O-\d+)", renewal.stdout).group(1)  # type: ignore[union-attr]
    paid = cloud.admin("mark-paid", "--signing-key", str(cloud.key), order_id)
    serial = re.search(r"licence (L-[\d-]+)", paid.stdout).group(1)  # type: ignore[union-attr]
    out = daemon.ctl("licence", "sync")
    assert out.returncode == 0, out.stderr
    shown = licence(daemon)
    assert (shown["serial"], shown["status"]) == (in_force["serial"], "valid")
    assert (shown["next_serial"], shown["next_valid_from"]) == (serial, in_force["valid_until"])
    cloud.stop()
    assert daemon.stop() == 0
    start = datetime.fromisoformat(str(in_force["valid_until"])).replace(tzinfo=UTC)
    daemon.flags += ["--wall-clock-offset", str((start - datetime.now(UTC)).total_seconds() + 3600)]
    daemon.start()
    shown = licence(daemon)
    assert (shown["serial"], shown["status"], shown["next_serial"]) == (serial, "valid", None)
    history = json.loads(daemon.ctl("licence", "history", "--json").stdout)
    assert (history[-1]["serial"], history[-1]["source"]) == (serial, "scheduled")


def stranger_sync(cloud: Cloud, base_id: str, code: str) -> grpc.RpcError:
    """Someone on the LAN who read the base id tries to sync as that installation."""
    creds = grpc.ssl_channel_credentials(cloud.tls[0].read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{cloud.port}", creds) as channel:
        installation = cloud_pb2.Installation(
            base_id=base_id, secret="stranger-" * 4, registration_code=code
        )
        try:
            cloud_pb2_grpc.LicenceSyncServiceStub(channel).Sync(
                cloud_pb2.SyncRequest(installation=installation), timeout=10
            )
        except grpc.RpcError as refused:
            return refused
    raise AssertionError("the stranger's sync was answered")


def test_only_the_registered_installation_syncs_and_a_reset_undoes_it(
    make_daemon: Callable[..., Daemon], cloud: Cloud
) -> None:
    """A stranger is refused with no code, a wrong code or a used code; the real daemon is told
    to register, registers with the vendor's code and syncs; after reset-installation it must
    register again with the new code."""
    daemon = synced_daemon(make_daemon, cloud)
    base_id = str(licence(daemon)["base_id"])
    first = subscribe(cloud, base_id)
    for code, why in (("", "not registered"), ("AAAA-BBBB-CCCC-DDDD", "not the registration")):
        refused = stranger_sync(cloud, base_id, code)
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED and why in refused.details()
    out = daemon.ctl("licence", "sync")
    assert out.returncode == 1 and "seatctl licence register CODE" in out.stderr
    assert "not registered" in str(licence(daemon)["last_sync_error"])
    issued = cloud.admin("registration-code", base_id)
    code = CODE.search(issued.stdout).group(1)  # type: ignore[union-attr]
    assert "not the registration" in stranger_sync(cloud, base_id, first).details()
    register(daemon, code)
    assert licence(daemon)["status"] == "valid"
    assert "already used" in stranger_sync(cloud, base_id, code).details()
    assert daemon.ctl("licence", "sync").returncode == 0
    reset = cloud.admin("reset-installation", base_id)
    fresh = CODE.search(reset.stdout).group(1)  # type: ignore[union-attr]
    out = daemon.ctl("licence", "sync")
    assert out.returncode == 1 and "not registered" in out.stderr
    register(daemon, fresh)
    audit = json.loads(cloud.admin("audit", "--base-id", base_id, "--json").stdout)
    assert [e["kind"] for e in audit].count("installation_reset") == 1


def test_transfer_auto_renew_and_order_url_reach_the_daemon(
    make_daemon: Callable[..., Daemon], cloud: Cloud
) -> None:
    """The cloud's order URL and a stopped auto-renew arrive with the next sync; after a
    transfer the old base's `licence show` says `transferred`, to which base and when."""
    cloud.stop()
    cloud.flags = ("--order-url", "https://vendor.example/order")
    cloud.start()
    daemon = synced_daemon(make_daemon, cloud)
    base_id = str(licence(daemon)["base_id"])
    register(daemon, subscribe(cloud, base_id))
    assert (licence(daemon)["auto_renew"], licence(daemon)["order_url"]) == (
        True,
        "https://vendor.example/order",
    )
    assert "https://vendor.example/order" in daemon.ctl("licence", "show").stdout
    cloud.admin("auto-renew", "--base-id", base_id, "off")
    assert daemon.ctl("licence", "sync").returncode == 0
    assert licence(daemon)["auto_renew"] is False
    new_base = "99999999999999999"
    cloud.admin(
        "transfer",
        "--signing-key",
        str(cloud.key),
        "--from-base-id",
        base_id,
        "--to-base-id",
        new_base,
    )
    assert daemon.ctl("licence", "sync").returncode == 0
    shown = licence(daemon)
    assert (shown["status"], shown["transferred_to"]) == ("transferred", new_base)
    human = daemon.ctl("licence", "show")
    assert f"transferred to base id {new_base}" in " ".join(human.stdout.split())
    kinds = [
        json.loads(line)["kind"] for line in daemon.ctl("journal", "--json").stdout.splitlines()
    ]
    assert "licence_transferred" in kinds


def seat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "seat"), *args], capture_output=True, text=True, timeout=30)


def test_seat_prints_the_order_url_at_capacity_and_the_grace_days_left(
    make_daemon: Callable[..., Daemon], cloud: Cloud
) -> None:
    """`seat hold` refused at capacity prints the cloud's order URL; with the licence in grace,
    `seat status` and `seat hold` show the days of grace left."""
    cloud.stop()
    cloud.flags = ("--order-url", "https://vendor.example/order")
    cloud.start()
    daemon = synced_daemon(make_daemon, cloud)
    register(daemon, subscribe(cloud, str(licence(daemon)["base_id"]), seats=1))
    with SeatClient(daemon.target) as client:
        held = client.acquire(user_code="AA")
        full = seat("hold", "--target", daemon.target, "--user", "BB")
        assert full.returncode != 0
        assert "order one more connection: https://vendor.example/order" in full.stdout
        held.release()
    ends = datetime.fromisoformat(str(licence(daemon)["valid_until"])).replace(tzinfo=UTC)
    cloud.stop()
    assert daemon.stop() == 0
    daemon.flags += [
        "--wall-clock-offset",
        str((ends - datetime.now(UTC)).total_seconds() + 3.5 * 86400),
    ]
    daemon.start()
    status = seat("status", "--target", daemon.target)
    assert "in grace (11 days of grace left to renew)" in status.stdout, status.stdout
    hold = subprocess.Popen(
        [str(BIN / "seat"), "hold", "--target", daemon.target, "--user", "CC"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert hold.stdout is not None
        lines = [hold.stdout.readline() for _ in range(2)]
        assert lines[0].startswith("holding session ")
        assert "11 days of grace left" in lines[1]
    finally:
        hold.send_signal(signal.SIGTERM)
        hold.wait(10)


def test_offline_keeps_the_licence_and_counts_failures(
    make_daemon: Callable[..., Daemon], cloud: Cloud
) -> None:
    """With the cloud stopped the daemon serves on its licence, `licence sync` fails with the
    reason, and `licence show` reports the failed syncs and the last success."""
    daemon = synced_daemon(make_daemon, cloud)
    register(daemon, subscribe(cloud, str(licence(daemon)["base_id"])))
    cloud.stop()
    out = daemon.ctl("licence", "sync")
    assert out.returncode == 1 and "cannot be reached" in out.stderr
    shown = licence(daemon)
    assert shown["status"] == "valid" and shown["failed_syncs"] >= 1
    assert shown["last_sync"] and shown["next_sync"]
    with SeatClient(daemon.target) as client:
        client.acquire(user_code="AA").release()


def test_cleared_licence_is_restored_by_sync(
    make_daemon: Callable[..., Daemon], cloud: Cloud
) -> None:
    """`seatctl licence clear` then a sync brings the licence back."""
    daemon = synced_daemon(make_daemon, cloud)
    register(daemon, subscribe(cloud, str(licence(daemon)["base_id"])))
    serial = licence(daemon)["serial"]
    assert daemon.ctl("licence", "clear").returncode == 0
    assert licence(daemon)["status"] == "free"
    assert daemon.ctl("licence", "sync").returncode == 0
    assert licence(daemon)["serial"] == serial


def test_licence_from_an_unknown_key_is_refused(
    make_daemon: Callable[..., Daemon], cloud: Cloud, tmp_path: Path
) -> None:
    """A cloud answering with a licence signed by a key the daemon does not trust is refused,
    and the licence in force stays."""
    daemon = synced_daemon(make_daemon, cloud)
    base_id = str(licence(daemon)["base_id"])
    register(daemon, subscribe(cloud, base_id))
    serial = licence(daemon)["serial"]
    cloud.stop()
    rogue_key, rogue_pub = keypair(tmp_path, "rogue")
    rogue = Cloud(
        tmp_path / "rogue", rogue_key, rogue_pub, cloud.tls, tmp_path / "rogue.log", port=cloud.port
    )
    rogue.start()
    try:
        out = daemon.ctl("licence", "register", subscribe(rogue, base_id, seats=50))
        assert out.returncode == 1
        assert "rogue" in out.stderr and "does not trust" in out.stderr
        assert (licence(daemon)["serial"], licence(daemon)["seats_active"]) == (serial, 2)
    finally:
        rogue.stop()


def test_quote_json_is_the_documented_shape() -> None:
    """`seatd-cloud quote --json` prints decimal strings; the reference example holds."""
    out = run(
        "seatd-cloud",
        "quote",
        "--edition",
        "ENTERPRISE",
        "--mode",
        "LOCAL",
        "--period",
        "ANNUAL",
        "--seats",
        "1",
        "--country",
        "FR",
        "--json",
    )
    q = json.loads(out.stdout)
    assert (q["price_per_seat_month"], q["amount_excl_vat"], q["vat"], q["amount_incl_vat"]) == (
        "8.50",
        "102.00",
        "20.40",
        "122.40",
    )
