"""Backup while running, restore while stopped."""

from __future__ import annotations

import getpass
import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from seatclient import SeatClient

from tests.e2e.conftest import BIN, Daemon

pytestmark = pytest.mark.e2e


def restore(daemon: Daemon, backup: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "seatd"), "restore", str(backup), "--state-dir", str(daemon.state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_backup_while_running_and_restore_while_stopped(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """A backup taken under load restores the sessions and journal of that moment; restore
    refuses while the daemon runs."""
    daemon = make_daemon("--dev-seats", "5")
    backup = tmp_path / "seatd.backup"
    with SeatClient(daemon.target) as client:
        kept = [client.acquire(user_code=f"U{i}") for i in range(3)]
        out = daemon.ctl("backup", str(backup))
        assert out.returncode == 0, out.stderr
        refused = restore(daemon, backup)
        assert refused.returncode != 0 and "stop it first" in refused.stderr
        later = client.acquire(user_code="LATE")
        ids = {s.session_id for s in kept}
        assert daemon.stop() == 0
        done = restore(daemon, backup)
        assert done.returncode == 0, done.stderr
        assert "3 sessions" in done.stdout
        daemon.start()
        listed = {s["id"] for s in daemon.sessions()["sessions"]}
        assert listed == ids and later.session_id not in listed
        assert daemon.ctl("journal", "verify").returncode == 0


def test_restore_refuses_a_file_that_is_no_backup(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """A file that is not a seat table is refused and the state is left as it was."""
    daemon = make_daemon()
    assert daemon.stop() == 0
    junk = tmp_path / "junk"
    junk.write_bytes(b"not an lmdb file" * 300)
    out = restore(daemon, junk)
    assert out.returncode != 0 and "not a usable seat table backup" in out.stderr
    daemon.start()
    assert daemon.sessions()["in_use"] == 0


def restored_entries(daemon: Daemon) -> list[dict[str, Any]]:
    out = daemon.ctl("journal", "--kind", "restored", "--json")
    assert out.returncode == 0, out.stderr
    return json_lines(out.stdout)


def test_a_restore_is_journaled_once_when_the_daemon_next_starts(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """The next start journals `restored` with the backup's file, digest and last journal
    entry, who restored and where the replaced state was kept; a later start does not."""
    daemon = make_daemon()
    backup = tmp_path / "seatd.backup"
    assert daemon.ctl("backup", str(backup)).returncode == 0
    last_seq = max(int(e["seq"]) for e in json_lines(daemon.ctl("journal", "--json").stdout))
    assert daemon.stop() == 0
    assert restore(daemon, backup).returncode == 0
    daemon.start()
    [entry] = restored_entries(daemon)
    assert entry["seq"] == last_seq + 1
    assert entry["backup"] == str(backup)
    assert entry["sha256"] == hashlib.sha256(backup.read_bytes()).hexdigest()
    assert (entry["backup_last_seq"], entry["actor"]) == (last_seq, getpass.getuser())
    assert ".before-restore-" in entry["replaced"] and Path(entry["replaced"]).is_dir()
    assert daemon.stop() == 0
    daemon.start()
    assert len(restored_entries(daemon)) == 1
    assert daemon.ctl("journal", "verify").returncode == 0


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]
