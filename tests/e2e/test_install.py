"""The README's install guide, followed into a temporary root; the unit's own ExecStart runs."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_install_as_the_guide_says_and_start_the_unit(tmp_path: Path) -> None:
    """venv under opt/seatd, pip install, unit + sysusers + config copied, sysusers applied;
    the unit's ExecStart (paths under the temporary root) starts, says READY=1, serves
    seatctl, and stops cleanly on SIGTERM."""
    root = tmp_path / "root"
    venv = root / "opt" / "seatd"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(ROOT / "clients/python"), str(ROOT)],
        check=True,
        timeout=900,
    )
    unit_dir, sysusers_dir, etc = (
        root / "etc/systemd/system",
        root / "usr/lib/sysusers.d",
        root / "etc/seatd",
    )
    for d in (unit_dir, sysusers_dir, etc):
        d.mkdir(parents=True)
    shutil.copy(ROOT / "deploy/systemd/seatd.service", unit_dir / "seatd.service")
    shutil.copy(ROOT / "deploy/systemd/seatd.sysusers", sysusers_dir / "seatd.conf")
    sysusers = shutil.which("systemd-sysusers")
    assert sysusers, "systemd-sysusers comes with Debian's systemd package"
    subprocess.run(
        [sysusers, f"--root={root}", str(sysusers_dir / "seatd.conf")],
        check=True,
        timeout=60,
        capture_output=True,
    )
    passwd = (root / "etc/passwd").read_text()
    assert re.search(r"^seatd:", passwd, re.M)
    assert re.search(r"^seatd-admin:", (root / "etc/group").read_text(), re.M)

    # What systemd would provide: StateDirectory, RuntimeDirectory. The shipped config is
    # used as is, with those paths (and free ports) pointed into the temporary root.
    state, run = root / "var/lib/seatd", Path(f"/tmp/seatd-install-{os.getpid()}")
    run.mkdir(mode=0o750, exist_ok=True)
    config = (ROOT / "deploy/seatd.toml").read_text()
    config = config.replace('# state_dir = "/var/lib/seatd"', f'state_dir = "{state}"')
    config = config.replace(
        '# admin_socket = "/run/seatd/admin.sock"', f'admin_socket = "{run}/admin.sock"'
    )
    config = config.replace('# listen = "127.0.0.1:7117"', 'listen = "127.0.0.1:0"')
    config = config.replace('# listen = "127.0.0.1:9117"', 'listen = "127.0.0.1:0"')
    (etc / "seatd.toml").write_text(config)

    unit = (unit_dir / "seatd.service").read_text()
    exec_start = next(
        line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")
    )
    argv = [
        a.replace("/opt/seatd", str(venv)).replace("/etc/seatd", str(etc))
        for a in shlex.split(exec_start)
    ]
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(run / "notify"))
    notify.settimeout(20)
    proc = subprocess.Popen(
        argv,
        env={**os.environ, "NOTIFY_SOCKET": str(run / "notify")},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert b"READY=1" in notify.recv(4096)
        out = subprocess.run(
            [str(venv / "bin/seatctl"), "--socket", str(run / "admin.sock"), "status"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        assert "seatd 0.1.0" in out.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert b"STOPPING=1" in notify.recv(4096)
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()
        shutil.rmtree(run, ignore_errors=True)
