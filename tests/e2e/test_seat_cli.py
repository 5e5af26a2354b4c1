"""The `seat` command, driven as a subprocess: its output lines and exit codes are a contract."""

from __future__ import annotations

import getpass
import re
import signal
import subprocess
from collections.abc import Callable

import pytest
from seatclient import SeatClient

from tests.e2e.conftest import Daemon, read_until, wait_for

pytestmark = pytest.mark.e2e


def test_hold_prints_the_eviction_reason_and_exits_3(
    make_daemon: Callable[..., Daemon], seat: Callable[..., subprocess.Popen[str]]
) -> None:
    """`seat hold` shows `evicted: <reason> (by <who>)` on its own line and exits 3."""
    daemon = make_daemon()
    proc = seat("hold", "--target", daemon.target, "--user", "AA", "--name", "Anne")
    sid = int(read_until(proc, "holding session ").split()[-1])
    wait_for(lambda: daemon.sessions()["sessions"][0]["attached"], 5, "attached")
    assert daemon.ctl("evict", str(sid), "--reason", "Dépassement connexions").returncode == 0
    assert (
        read_until(proc, "evicted:") == f"evicted: Dépassement connexions (by {getpass.getuser()})"
    )
    assert proc.wait(10) == 3


def test_hold_at_capacity_lists_the_sessions_and_exits_2(
    make_daemon: Callable[..., Daemon], seat: Callable[..., subprocess.Popen[str]]
) -> None:
    """At capacity without --wait, `seat hold` prints the live sessions and exits 2."""
    daemon = make_daemon("--dev-seats", "1")
    with SeatClient(daemon.target) as client:
        held = client.acquire(user_code="AA", user_name="Anne")
        proc = seat("hold", "--target", daemon.target, "--user", "BB")
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 2
        assert "connections allowed by the licence are in use" in out
        assert re.search(rf"^{held.session_id}\s+AA\s+Anne\s", out, re.MULTILINE)


def test_hold_waits_then_holds(
    make_daemon: Callable[..., Daemon], seat: Callable[..., subprocess.Popen[str]]
) -> None:
    """With --wait, `seat hold` says its queue position and holds once a seat frees."""
    daemon = make_daemon("--dev-seats", "1")
    with SeatClient(daemon.target) as client:
        held = client.acquire(user_code="AA")
        proc = seat("hold", "--target", daemon.target, "--user", "BB", "--wait", "20")
        assert read_until(proc, "waiting") == "waiting for a seat: position 1"
        held.release()
        read_until(proc, "holding session ")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_hold_releases_on_sigint_and_exits_0(
    make_daemon: Callable[..., Daemon], seat: Callable[..., subprocess.Popen[str]]
) -> None:
    """Ctrl-C releases the seat and exits 0."""
    daemon = make_daemon()
    proc = seat("hold", "--target", daemon.target, "--user", "AA")
    read_until(proc, "holding session ")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0
    assert daemon.sessions()["in_use"] == 0


def test_unreachable_daemon_exits_1(seat: Callable[..., subprocess.Popen[str]]) -> None:
    """Both commands exit 1 with a readable message when nothing answers."""
    for args in (("status",), ("hold", "--user", "AA")):
        proc = seat(*args, "--target", "127.0.0.1:1", "--timeout", "1")
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert "cannot be reached" in err and "Traceback" not in err


def test_status_shows_the_licence_and_seats(
    make_daemon: Callable[..., Daemon], seat: Callable[..., subprocess.Popen[str]]
) -> None:
    """`seat status` says the server is reachable, the licence and the seats in use."""
    daemon = make_daemon("--dev-seats", "3")
    proc = seat("status", "--target", daemon.target)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "reachable" in out and "seats in use: 0 of 3" in out


def test_an_eviction_while_away_reaches_the_holder_after_a_restart(
    make_daemon: Callable[..., Daemon], seat: Callable[..., subprocess.Popen[str]]
) -> None:
    """Evicted while its process was stopped, then the daemon restarted: once resumed, the
    holder is told it was evicted and why (not "does not exist", not lease lost)."""
    daemon = make_daemon()
    proc = seat("hold", "--target", daemon.target, "--user", "AA")
    sid = int(read_until(proc, "holding session ").split()[-1])
    wait_for(lambda: daemon.sessions()["sessions"][0]["attached"], 5, "attached")
    proc.send_signal(signal.SIGSTOP)
    try:
        # A restart detaches the stopped holder, so the eviction has no stream to reach.
        daemon.kill9()
        daemon.start()
        assert daemon.ctl("evict", str(sid), "--reason", "Audit").returncode == 0
        assert daemon.stop() == 0
        daemon.start()
    finally:
        proc.send_signal(signal.SIGCONT)
    assert read_until(proc, "evicted:") == f"evicted: Audit (by {getpass.getuser()})"
    assert proc.wait(20) == 3
