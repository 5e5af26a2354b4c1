"""The daemon as the unit runs it: the unprivileged seatd user, administered by a member of
seatd-admin, used by workstations that are neither. Root bypasses file permissions, so these
are the tests that show the install works."""

from __future__ import annotations

import functools
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.accounts import Accounts, shared_dir
from tests.e2e.conftest import BIN, Daemon

pytestmark = pytest.mark.e2e


@pytest.fixture
def home(accounts: Accounts) -> Iterator[Path]:
    """What systemd's RuntimeDirectory gives: seatd:seatd-admin, 0750."""
    with shared_dir(accounts.service_uid, accounts.admin_gid, 0o750) as path:
        yield path


@pytest.fixture
def service_daemon(
    accounts: Accounts, home: Path, make_daemon: Callable[..., Daemon]
) -> Callable[..., Daemon]:
    """A daemon run as the seatd user (state in `home`), seatctl run as an admin."""
    return functools.partial(
        make_daemon, home=home, runner=accounts.service, ctl_runner=accounts.admin
    )


def modes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): stat.filemode(p.stat().st_mode)
        for p in sorted([root, *root.rglob("*")])
    }


def test_fresh_start_as_the_service_user(
    service_daemon: Callable[..., Daemon], accounts: Accounts
) -> None:
    """seatd starts on an empty state as the seatd user, keeps it private, and answers both
    an admin's seatctl and a stranger's `seat status`."""
    daemon = service_daemon()
    assert daemon.ctl("status").returncode == 0
    seat = subprocess.run(
        [*accounts.stranger, str(BIN / "seat"), "status", "--target", daemon.target],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert seat.returncode == 0 and "reachable" in seat.stdout, seat.stderr
    assert daemon.stop() == 0
    assert modes(daemon.state_dir) == {
        ".": "drwx------",
        "seatd.lmdb": "drwx------",
        "seatd.lmdb/data.mdb": "-rw-------",
        "seatd.lmdb/lock.mdb": "-rw-------",
        "seatd.lock": "-rw-------",
    }
    assert {p.stat().st_uid for p in [daemon.state_dir, *daemon.state_dir.rglob("*")]} == {
        accounts.service_uid
    }
