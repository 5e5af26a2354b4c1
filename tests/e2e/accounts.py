"""Unprivileged accounts for the end-to-end tests: the service user the unit names, an admin
in its group, and a stranger.

Root bypasses file permissions, so a daemon run as root proves nothing about the install.
The accounts come from the shipped sysusers file, applied for real (idempotent: accounts that
exist already are kept), under a lock, since several test runs may share this machine.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSUSERS = ROOT / "deploy/systemd/seatd.sysusers"
SERVICE_USER, ADMIN_GROUP = "seatd", "seatd-admin"
# Anyone else: the admin is this account with seatd-admin added, the stranger without it.
OTHER_USER = "nobody"
LOCK = Path("/tmp/seatd-tests-accounts.lock")


@dataclass(frozen=True)
class Accounts:
    service_uid: int
    admin_gid: int
    other_uid: int
    other_gid: int

    @property
    def service(self) -> list[str]:
        """Run as the unit's User=seatd, Group=seatd-admin."""
        return ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={ADMIN_GROUP}", "--init-groups"]

    @property
    def admin(self) -> list[str]:
        """Run as an unprivileged member of seatd-admin."""
        return [
            "setpriv",
            f"--reuid={self.other_uid}",
            f"--regid={self.other_gid}",
            f"--groups={self.admin_gid}",
        ]

    @property
    def stranger(self) -> list[str]:
        """Run as an unprivileged user outside seatd-admin."""
        return [
            "setpriv",
            f"--reuid={self.other_uid}",
            f"--regid={self.other_gid}",
            "--clear-groups",
        ]


def _apply_sysusers() -> None:
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(
            [sysusers_binary(), str(SYSUSERS)], check=True, capture_output=True, timeout=60
        )


def sysusers_binary() -> str:
    found = shutil.which("systemd-sysusers")
    assert found, "systemd-sysusers comes with Debian's systemd package (make systemd-tools)"
    return found


@pytest.fixture(scope="session")
def accounts() -> Accounts:
    """The shipped sysusers file applied to this machine; skips unless the tests run as root."""
    if os.geteuid() != 0:
        pytest.skip("switching to the seatd service user needs root: run the suite as root")
    _apply_sysusers()
    found = Accounts(
        pwd.getpwnam(SERVICE_USER).pw_uid,
        grp.getgrnam(ADMIN_GROUP).gr_gid,
        pwd.getpwnam(OTHER_USER).pw_uid,
        pwd.getpwnam(OTHER_USER).pw_gid,
    )
    probe = subprocess.run(
        [*found.service, sys.executable, "-c", "import seatd, seatclient"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, (
        f"the user {SERVICE_USER} cannot run {sys.executable} with seatd installed "
        f"(put the virtualenv where every user may read it): {probe.stderr}"
    )
    return found


@contextmanager
def shared_dir(owner: int, group: int, mode: int) -> Iterator[Path]:
    """A short directory under /tmp owned by `owner`:`group` (tmp_path's parents are root's
    0700, so no other user could reach a file under them; unix socket paths stay short)."""
    path = Path(tempfile.mkdtemp(prefix="seatd-u-", dir="/tmp"))
    try:
        os.chown(path, owner, group)
        path.chmod(mode)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
