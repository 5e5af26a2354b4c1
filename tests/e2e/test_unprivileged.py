"""The daemon as the unit runs it: the unprivileged seatd user, administered by a member of
seatd-admin, used by workstations that are neither. Root bypasses file permissions, so these
are the tests that show the install works."""

from __future__ import annotations

import functools
import json
import os
import signal
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.accounts import Accounts, shared_dir
from tests.e2e.conftest import BIN, Daemon, wait_for
from tests.e2e.test_licence import issue, vendor

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


@pytest.fixture
def admin_dir(accounts: Accounts) -> Iterator[Path]:
    """The admin's own directory (backups, licence files it received)."""
    with shared_dir(accounts.other_uid, accounts.other_gid, 0o700) as path:
        yield path


def run_as(runner: list[str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*runner, *argv], capture_output=True, text=True, timeout=60)


def hold(accounts: Accounts, target: str) -> tuple[subprocess.Popen[str], int]:
    """`seat hold` as a workstation user: the process and its session id."""
    proc = subprocess.Popen(
        [*accounts.stranger, str(BIN / "seat"), "hold", "--target", target, "--user", "WS1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("holding session "):
            return proc, int(line.split()[-1])
    proc.wait(10)
    raise AssertionError(f"seat hold exited with {proc.returncode}")


def hold_and_die(accounts: Accounts, target: str) -> tuple[subprocess.Popen[str], int]:
    """A workstation that took a seat and died: its seat stays in the table (and backups)."""
    proc, session = hold(accounts, target)
    proc.kill()
    proc.wait(10)
    return proc, session


def test_restart_keeps_the_sessions_as_the_service_user(
    service_daemon: Callable[..., Daemon], accounts: Accounts
) -> None:
    """A seat held by `seat hold` survives a stop and start of the daemon as the seatd user."""
    # A restart grace that outlasts a slow restart on a busy machine (FAST's is 2 s).
    daemon = service_daemon("--restart-grace", "30")
    proc, session = hold(accounts, daemon.target)
    try:
        assert daemon.stop() == 0
        daemon.start()
        listed = daemon.sessions()["sessions"]
        assert [s["id"] for s in listed] == [session]
        wait_for(lambda: daemon.sessions()["sessions"][0]["attached"], 10, "the reattach")
    finally:
        proc.terminate()
        proc.wait(10)


def test_an_admins_backup_is_readable_by_the_admin_only(
    service_daemon: Callable[..., Daemon], accounts: Accounts, admin_dir: Path
) -> None:
    """`seatctl backup` by a seatd-admin member writes the whole state 0600, owned by them."""
    daemon = service_daemon()
    out = daemon.ctl("backup", str(admin_dir / "seatd.backup"))
    assert out.returncode == 0, out.stderr
    written = (admin_dir / "seatd.backup").stat()
    assert stat.filemode(written.st_mode) == "-rw-------"
    assert written.st_uid == accounts.other_uid


def test_a_backup_where_the_admin_cannot_write_is_a_clear_error(
    service_daemon: Callable[..., Daemon], home: Path
) -> None:
    """A destination the admin may not write is refused with the reason, not a traceback."""
    daemon = service_daemon()
    out = daemon.ctl("backup", str(home / "seatd.backup"))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"cannot write the backup to {home / 'seatd.backup'}: Permission denied" in out.stderr


def test_a_restore_by_root_is_served_by_the_service_user(
    service_daemon: Callable[..., Daemon], accounts: Accounts, admin_dir: Path
) -> None:
    """`sudo seatd restore` leaves a state the seatd user owns: the daemon starts on it."""
    # Grace long enough for the restored session to outlast a slow start and seatctl run.
    daemon = service_daemon("--restart-grace", "60")
    _, session = hold_and_die(accounts, daemon.target)
    backup = admin_dir / "seatd.backup"
    assert daemon.ctl("backup", str(backup)).returncode == 0
    assert daemon.stop() == 0
    out = run_as(
        [], str(BIN / "seatd"), "restore", str(backup), "--state-dir", str(daemon.state_dir)
    )
    assert out.returncode == 0, out.stderr
    daemon.start()
    assert [s["id"] for s in daemon.sessions()["sessions"]] == [session]
    restored = daemon.state_dir / "seatd.lmdb"
    assert {p.stat().st_uid for p in [restored, *restored.iterdir()]} == {accounts.service_uid}


def test_a_restore_by_root_onto_a_new_server_is_served_by_the_service_user(
    service_daemon: Callable[..., Daemon], accounts: Accounts, admin_dir: Path
) -> None:
    """A backup restored by root into the empty state directory systemd made for seatd (a
    server move, before the first start) is served: nothing in it is left to root."""
    # The dead workstation's seat must still be held when the backup is taken, however slow
    # the machine: a reattach grace far longer than the backup.
    old = service_daemon("--lease-ttl", "60", "--reattach-grace", "60", name="old")
    _, session = hold_and_die(accounts, old.target)
    backup = admin_dir / "seatd.backup"
    assert old.ctl("backup", str(backup)).returncode == 0
    assert old.stop() == 0
    new_state = old.state_dir.with_name("state-new")
    new_state.mkdir(mode=0o700)
    os.chown(new_state, accounts.service_uid, accounts.admin_gid)
    out = run_as([], str(BIN / "seatd"), "restore", str(backup), "--state-dir", str(new_state))
    assert out.returncode == 0, out.stderr
    # Grace long enough for the restored session to outlast a slow start and seatctl run.
    new = service_daemon("--restart-grace", "60", name="new")
    assert [s["id"] for s in new.sessions()["sessions"]] == [session]


def vendor_keys(home: Path) -> tuple[Path, Path]:
    """A vendor key pair; the public half where the service user reads it, as /etc/seatd."""
    private, public = home / "vendor.key", home / "vendor.pub"
    vendor("keygen", "--out-private", str(private), "--out-public", str(public))
    public.chmod(0o644)
    return private, public


def licence_show(daemon: Daemon) -> dict[str, Any]:
    out = daemon.ctl("licence", "show", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_an_admin_imports_a_licence(
    service_daemon: Callable[..., Daemon], accounts: Accounts, home: Path, admin_dir: Path
) -> None:
    """A licence file the admin owns is imported by seatctl and verified by the daemon with a
    vendor key the service user reads."""
    private, public = vendor_keys(home)
    daemon = service_daemon("--trusted-key", str(public))
    lic = issue(private, str(licence_show(daemon)["base_id"]), admin_dir / "anyway.lic")
    os.chown(lic, accounts.other_uid, accounts.other_gid)
    lic.chmod(0o600)
    out = daemon.ctl("licence", "import", str(lic))
    assert out.returncode == 0, out.stderr
    assert (licence_show(daemon)["status"], licence_show(daemon)["seats_active"]) == ("valid", 2)


def test_sighup_rereads_the_config_and_licence_file_as_the_service_user(
    service_daemon: Callable[..., Daemon], accounts: Accounts, home: Path
) -> None:
    """Config and licence file owned by root, readable by the seatd-admin group (0640): a
    SIGHUP (systemctl reload) installs the licence file named in the config."""
    private, public = vendor_keys(home)
    config, lic = home / "seatd.toml", home / "anyway.lic"
    config.write_text(f'[licence]\ntrusted_keys = ["{public}"]\nfile = "{lic}"\n')
    daemon = service_daemon("--config", str(config))
    issue(private, str(licence_show(daemon)["base_id"]), lic)
    for path in (config, lic):
        os.chown(path, 0, accounts.admin_gid)
        path.chmod(0o640)
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: licence_show(daemon)["status"] == "valid", 10, "the licence file")


def test_seatctl_outside_seatd_admin_is_told_which_group_to_join(
    service_daemon: Callable[..., Daemon], accounts: Accounts
) -> None:
    """A user outside the socket's group is refused with the group to join, not a traceback."""
    daemon = service_daemon()
    out = run_as(accounts.stranger, str(BIN / "seatctl"), "--socket", str(daemon.socket), "status")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"permission denied on the admin socket {daemon.socket}" in out.stderr
    assert "member of the group seatd-admin" in out.stderr
