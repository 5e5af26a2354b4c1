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

import pytest
from seatclient import LicenceChanged, SeatClient, SeatEvent, SeatsExhausted

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


def subscribe(cloud: Cloud, base_id: str, seats: int = 2) -> None:
    cloud.admin(
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


def test_sync_installs_the_licence_and_paid_extra_seats_raise_the_cap(
    make_daemon: Callable[..., Daemon], cloud: Cloud
) -> None:
    """A paid subscription reaches the daemon by sync; an extra seat ordered from seatctl and
    marked paid by the vendor raises the cap at the next sync, and clients are told."""
    daemon = synced_daemon(make_daemon, cloud)
    base_id = str(licence(daemon)["base_id"])
    wait_for(lambda: licence(daemon)["last_sync"], 10, "the first sync at start")
    subscribe(cloud, base_id)
    assert daemon.stop() == 0
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
    subscribe(cloud, base_id)
    assert daemon.ctl("licence", "sync").returncode == 0
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


def test_offline_keeps_the_licence_and_counts_failures(
    make_daemon: Callable[..., Daemon], cloud: Cloud
) -> None:
    """With the cloud stopped the daemon serves on its licence, `licence sync` fails with the
    reason, and `licence show` reports the failed syncs and the last success."""
    daemon = synced_daemon(make_daemon, cloud)
    subscribe(cloud, str(licence(daemon)["base_id"]))
    assert daemon.ctl("licence", "sync").returncode == 0
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
    subscribe(cloud, str(licence(daemon)["base_id"]))
    assert daemon.ctl("licence", "sync").returncode == 0
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
    subscribe(cloud, base_id)
    assert daemon.ctl("licence", "sync").returncode == 0
    serial = licence(daemon)["serial"]
    cloud.stop()
    rogue_key, rogue_pub = keypair(tmp_path, "rogue")
    rogue = Cloud(
        tmp_path / "rogue", rogue_key, rogue_pub, cloud.tls, tmp_path / "rogue.log", port=cloud.port
    )
    rogue.start()
    try:
        subscribe(rogue, base_id, seats=50)
        out = daemon.ctl("licence", "sync")
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
