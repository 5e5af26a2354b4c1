"""A damaged or missing seat table is never served and never replaced: the real daemon
refuses to start with one clear message and an exit status systemd does not restart on."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from seatclient import SeatClient

from tests.e2e.conftest import BIN, Daemon
from tests.tables import filled, raw_env, zero_pages_holding

pytestmark = pytest.mark.e2e

EXIT_STORE_DAMAGED = 65


def serve(state_dir: Path, short_dir: Path) -> subprocess.CompletedProcess[str]:
    """Start the daemon on `state_dir` and wait for it to refuse (bounded)."""
    cmd = [
        *(sys.executable, "-m", "seatd", "serve", "--listen", "127.0.0.1:0"),
        *("--state-dir", str(state_dir), "--admin-socket", str(short_dir / "a.sock")),
        *("--metrics-listen", ""),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def refused_clearly(out: subprocess.CompletedProcess[str], *said: str) -> None:
    assert out.returncode == EXIT_STORE_DAMAGED, out.stderr
    assert "Traceback" not in out.stderr
    for text in (*said, "seatd restore BACKUP"):
        assert text in out.stderr, out.stderr


def test_a_truncated_seat_table_is_refused_not_crashed_on(tmp_path: Path, short_dir: Path) -> None:
    """A data file cut short (SIGBUS on a read) is refused before serving, naming the crash."""
    filled(tmp_path, 3000)
    data = tmp_path / "seatd.lmdb" / "data.mdb"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    refused_clearly(serve(tmp_path, short_dir), "is damaged: LMDB crashed on it (SIGBUS)")


def test_a_zeroed_page_is_refused_not_crashed_on(tmp_path: Path, short_dir: Path) -> None:
    """A zeroed journal page (LMDB aborts on its first read: a crash loop under systemd) is
    refused before serving, naming the database and LMDB's assertion."""
    filled(tmp_path, 3000)
    zero_pages_holding(tmp_path / "seatd.lmdb" / "data.mdb", b'"entry 1000"')
    refused_clearly(
        serve(tmp_path, short_dir),
        "LMDB crashed on it (SIGABRT) while reading database 'journal'",
        "Assertion",
    )


def test_a_record_that_does_not_decode_is_refused_naming_it(
    tmp_path: Path, short_dir: Path
) -> None:
    """Bad JSON in a session record: one line naming the record, no traceback."""
    filled(tmp_path, 1)
    env = raw_env(tmp_path)
    with env.begin(write=True) as txn:
        txn.put((1).to_bytes(8, "big"), b"{not json", db=env.open_db(b"sessions", txn=txn))
        txn.put(b"next_session_id", b"2", db=env.open_db(b"meta", txn=txn))
    env.close()
    refused_clearly(serve(tmp_path, short_dir), "record 1 in database 'sessions' is not JSON")


def test_a_deleted_data_file_is_refused_until_init(tmp_path: Path, short_dir: Path) -> None:
    """data.mdb deleted: no fresh site in its place; `seatd init` starts one on purpose."""
    old = filled(tmp_path, 1)
    (tmp_path / "seatd.lmdb" / "data.mdb").unlink()
    refused_clearly(serve(tmp_path, short_dir), "holds no seat table", "seatd init")
    assert not (tmp_path / "seatd.lmdb" / "data.mdb").exists()
    init = [str(BIN / "seatd"), "init", "--state-dir", str(tmp_path)]
    made = subprocess.run(init, capture_output=True, text=True, timeout=30)
    assert made.returncode == 0 and "created a new seat table" in made.stdout, made.stderr
    assert old not in made.stdout


def test_a_damaged_journal_entry_is_named_to_the_reader(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """A mid-journal entry that is not JSON: `seatctl journal` names it (DATA_LOSS), never
    INTERNAL, and seats are still served."""
    filled(tmp_path / "state-d", 5)
    env = raw_env(tmp_path / "state-d")
    with env.begin(write=True) as txn:
        txn.put((2).to_bytes(8, "big"), b"{not json", db=env.open_db(b"journal", txn=txn))
    env.close()
    daemon = make_daemon("--dev-seats", "2")
    out = daemon.ctl("journal")
    assert out.returncode == 1
    assert "record 2 in database 'journal' is not JSON" in out.stderr, out.stderr
    assert "RECORD_DAMAGED" in out.stderr and "INTERNAL" not in out.stderr
    with SeatClient(daemon.target) as client:
        assert client.acquire(user_code="AA").session_id == 1


def restore(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN / "seatd"), "restore", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_a_backup_is_verified_when_written(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """`seatctl backup` checks the copy it wrote (pages, records, chain) and says so."""
    daemon = make_daemon("--dev-seats", "3")
    with SeatClient(daemon.target) as client:
        client.acquire(user_code="AA")
        out = daemon.ctl("backup", str(tmp_path / "b.mdb"))
    assert out.returncode == 0, out.stderr
    assert "and verified: base id" in out.stdout and "1 sessions" in out.stdout
    assert "hash chain verified" in out.stdout


def test_restore_check_verifies_a_backup_and_changes_nothing(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """`seatd restore --check` says a good backup is usable, refuses one whose journal was
    edited, and touches no state either way."""
    daemon = make_daemon()
    good = tmp_path / "good.mdb"
    assert daemon.ctl("backup", str(good)).returncode == 0
    assert daemon.stop() == 0
    ok = restore("--check", str(good), "--state-dir", str(tmp_path / "never"))
    assert ok.returncode == 0 and "is a usable seat table backup" in ok.stdout, ok.stderr
    bad = tmp_path / "bad.mdb"
    bad.write_bytes(good.read_bytes().replace(b"daemon_started", b"daemon_stopped", 1))
    refused = restore("--check", str(bad))
    assert refused.returncode != 0
    assert "not a usable seat table backup: the journal's hash chain breaks at seq 1" in (
        refused.stderr
    )
    assert not (tmp_path / "never").exists()


def test_restore_refuses_a_backup_that_does_not_verify(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """A backup whose journal was edited is refused before anything is replaced."""
    daemon = make_daemon()
    good = tmp_path / "good.mdb"
    assert daemon.ctl("backup", str(good)).returncode == 0
    assert daemon.stop() == 0
    bad = tmp_path / "bad.mdb"
    bad.write_bytes(good.read_bytes().replace(b"daemon_started", b"daemon_stopped", 1))
    before = (daemon.state_dir / "seatd.lmdb" / "data.mdb").read_bytes()
    out = restore(str(bad), "--state-dir", str(daemon.state_dir))
    assert out.returncode != 0 and "hash chain breaks at seq 1" in out.stderr
    assert (daemon.state_dir / "seatd.lmdb" / "data.mdb").read_bytes() == before
