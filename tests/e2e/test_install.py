"""The README's install guide, followed into a temporary root; the unit's own ExecStart runs."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.accounts import Accounts, shared_dir

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def unit_setting(unit: str, name: str) -> str:
    return next(line.split("=", 1)[1] for line in unit.splitlines() if line.startswith(f"{name}="))


@pytest.fixture
def install_root() -> Iterator[Path]:
    """The temporary root, where the unit's user can reach it (tmp_path's parents are 0700)."""
    with shared_dir(0, 0, 0o755) as path:
        yield path


def test_install_as_the_guide_says_and_start_the_unit(
    install_root: Path, accounts: Accounts
) -> None:
    """venv under opt/seatd, pip install, unit + sysusers + config copied, sysusers applied;
    the unit's ExecStart (paths under the temporary root) starts as the unit's User= and
    Group= with its UMask=, says READY=1, serves seatctl to a member of seatd-admin, refuses
    a user outside it with a message saying what to do, and stops cleanly on SIGTERM."""
    root = install_root / "root"
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
    unit = (unit_dir / "seatd.service").read_text()
    user, group = unit_setting(unit, "User"), unit_setting(unit, "Group")
    uid, gid = pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
    state, run = root / "var/lib/seatd", install_root / "run"
    for directory, mode in ((state, "StateDirectoryMode"), (run, "RuntimeDirectoryMode")):
        directory.mkdir(parents=True)
        os.chown(directory, uid, gid)
        directory.chmod(int(unit_setting(unit, mode), 8))
    config = (ROOT / "deploy/seatd.toml").read_text()
    config = config.replace('# state_dir = "/var/lib/seatd"', f'state_dir = "{state}"')
    config = config.replace(
        '# admin_socket = "/run/seatd/admin.sock"', f'admin_socket = "{run}/admin.sock"'
    )
    config = config.replace('# listen = "127.0.0.1:7117"', 'listen = "127.0.0.1:0"')
    config = config.replace('# listen = "127.0.0.1:9117"', 'listen = "127.0.0.1:0"')
    (etc / "seatd.toml").write_text(config)

    argv = [
        a.replace("/opt/seatd", str(venv)).replace("/etc/seatd", str(etc))
        for a in shlex.split(unit_setting(unit, "ExecStart"))
    ]
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(install_root / "notify"))
    (install_root / "notify").chmod(0o777)  # as systemd's: any service may notify
    notify.settimeout(20)
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups", *argv],
        env={**os.environ, "NOTIFY_SOCKET": str(install_root / "notify")},
        stderr=subprocess.PIPE,
        text=True,
        umask=int(unit_setting(unit, "UMask"), 8),
    )
    try:
        assert b"READY=1" in notify.recv(4096)
        seatctl = [str(venv / "bin/seatctl"), "--socket", str(run / "admin.sock"), "status"]
        out = subprocess.run(
            [*accounts.admin, *seatctl], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, out.stderr
        assert "seatd 0.1.0" in out.stdout
        out = subprocess.run(
            [*accounts.stranger, *seatctl], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert "permission denied on the admin socket" in out.stderr
        assert "member of the group seatd-admin" in out.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert b"STOPPING=1" in notify.recv(4096)
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()
