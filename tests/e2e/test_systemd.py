"""Running under systemd: the notify protocol against a fake NOTIFY_SOCKET, and the unit file."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Daemon

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "seatd.service"


class FakeNotify:
    """What systemd listens on: a datagram socket collecting the daemon's messages."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.messages: list[dict[str, str]] = []

    def wait_for(self, key: str, timeout: float = 10) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages:
                if key in m:
                    return m
            try:
                raw = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.messages.append(dict(line.split("=", 1) for line in raw.splitlines()))
        raise AssertionError(f"no {key} within {timeout} s; got {self.messages}")


@pytest.fixture(params=["path", "abstract"])
def notify(request: pytest.FixtureRequest, short_dir: Path) -> Iterator[tuple[str, FakeNotify]]:
    address = str(short_dir / "notify") if request.param == "path" else f"@seatd-test-{id(request)}"
    fake = FakeNotify(address)
    yield address, fake
    fake.sock.close()


def test_ready_status_watchdog_stopping(
    make_daemon: Callable[..., Daemon], notify: tuple[str, FakeNotify]
) -> None:
    """READY=1 with seats in use once serving; WATCHDOG=1 after self-checks; STOPPING=1 on
    SIGTERM; then exit 0."""
    address, fake = notify
    daemon = make_daemon(
        "--dev-seats", "3", env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"}
    )
    ready = fake.wait_for("READY")
    assert ready["READY"] == "1" and ready["STATUS"] == "0 of 3 seats in use"
    first = fake.wait_for("WATCHDOG")
    fake.messages.remove(first)
    fake.wait_for("WATCHDOG")
    assert daemon.stop() == 0
    stopping = fake.wait_for("STOPPING")
    assert stopping["STATUS"].startswith("draining")


def test_unit_file_verifies_clean(tmp_path: Path) -> None:
    """systemd-analyze verify prints nothing for the unit (pointed at an installed binary)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is installed by the Makefile"
    binary = tmp_path / "opt" / "seatd" / "bin" / "seatd"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    unit = tmp_path / "seatd.service"
    unit.write_text(UNIT.read_text().replace("/opt/seatd/", f"{tmp_path}/opt/seatd/"))
    out = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert (out.stdout + out.stderr).strip() == ""


def test_unit_file_is_hardened(tmp_path: Path) -> None:
    """systemd-analyze security --offline scores the unit at 2.0 or better."""
    analyze = shutil.which("systemd-analyze")
    assert analyze
    out = subprocess.run(
        [analyze, "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = [line for line in out.stdout.splitlines() if "Overall exposure level" in line]
    assert found, out.stdout + out.stderr
    score = float(found[0].split("level for seatd.service:")[1].split()[0])
    assert score <= 2.0


def test_unit_file_raises_the_descriptor_limit() -> None:
    """The unit sets LimitNOFILE far above systemd's default 1024, so idle connections from
    the LAN cannot use up the daemon's descriptors."""
    limits = [
        line.split("=", 1)[1]
        for line in UNIT.read_text().splitlines()
        if line.startswith("LimitNOFILE=")
    ]
    assert limits and int(limits[0].split(":")[-1]) >= 65536
