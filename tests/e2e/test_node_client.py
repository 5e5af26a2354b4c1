"""The TypeScript client (clients/node) end to end: its `seat-node` CLI against the real
daemon, on the scenarios the Python library's e2e tests run. Lines and exit codes are the
same contract as the Python `seat` command's."""

from __future__ import annotations

import getpass
import queue
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from seatclient import SeatClient

from tests.e2e.conftest import Daemon, wait_for
from tests.e2e.test_policy import IDLE, policy_daemon, wait_in_queue
from tests.node import node_script

pytestmark = pytest.mark.e2e


class NodeSeat:
    """One `seat-node` process, its output lines read by a thread so every wait is bounded."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*node_script("src/cli.js"), *args],
            stdin=subprocess.PIPE,  # activity lines for `--report-idle`
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float = 20) -> str:
        """The next line starting with `prefix` (earlier lines are kept in `seen`)."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} within {timeout} s; saw {self.seen}") from None
            if line is None:
                raise AssertionError(f"exited {self.proc.wait(10)} before {prefix!r}: {self.seen}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def type_line(self) -> None:
        """A line on stdin: activity, for a `--report-idle` holder."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def session_id(self) -> int:
        return int(self.expect("holding session ").split()[-1])

    def exit_code(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout)


@pytest.fixture
def seat_node() -> Iterator[Callable[..., NodeSeat]]:
    started: list[NodeSeat] = []

    def run(*args: str) -> NodeSeat:
        started.append(NodeSeat(*args))
        return started[-1]

    yield run
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)


def attached(daemon: Daemon, session_id: int) -> bool:
    return any(s["id"] == session_id and s["attached"] for s in daemon.sessions()["sessions"])


def hold_attached(daemon: Daemon, seat_node: Callable[..., NodeSeat]) -> tuple[NodeSeat, int]:
    """`seat-node hold` as user AA, once its keepalive stream is attached: the seat, its id."""
    held = seat_node("hold", "--target", daemon.target, "--user", "AA")
    sid = held.session_id()
    wait_for(lambda: attached(daemon, sid), 10, "attached")
    return held, sid


def test_node_hold_prints_the_pushed_eviction_reason_and_exits_3(
    make_daemon: Callable[..., Daemon], seat_node: Callable[..., NodeSeat]
) -> None:
    """An admin eviction reaches the Node client as `evicted: <reason> (by <who>)`; exit 3."""
    daemon = make_daemon()
    held, sid = hold_attached(daemon, seat_node)
    assert daemon.ctl("evict", str(sid), "--reason", "Dépassement connexions").returncode == 0
    assert held.expect("evicted:") == f"evicted: Dépassement connexions (by {getpass.getuser()})"
    assert held.exit_code() == 3


def test_node_hold_releases_its_seat_on_sigint(
    make_daemon: Callable[..., Daemon], seat_node: Callable[..., NodeSeat]
) -> None:
    """SIGINT: the Node client releases its seat before exiting 0."""
    daemon = make_daemon()
    held = seat_node("hold", "--target", daemon.target, "--user", "AA")
    sid = held.session_id()
    held.proc.send_signal(signal.SIGINT)
    assert held.expect("released session") == f"released session {sid}"
    assert held.exit_code() == 0
    assert daemon.sessions()["sessions"] == []


def test_node_refusal_at_capacity_lists_the_sessions_and_exits_2(
    make_daemon: Callable[..., Daemon], seat_node: Callable[..., NodeSeat]
) -> None:
    """At capacity the refusal is decoded with the session list: a table, exit 2."""
    daemon = make_daemon("--dev-seats", "1")
    holder = seat_node("hold", "--target", daemon.target, "--user", "AA", "--name", "Anne")
    sid = holder.session_id()
    refused = seat_node("hold", "--target", daemon.target, "--user", "BB")
    assert refused.exit_code() == 2
    out = "\n".join(refused.seen + [line for line in iter(refused.lines.get, None)])
    assert "connections allowed by the licence are in use" in out
    assert re.search(rf"^{sid}\s+AA\s+Anne\s+{re.escape(socket.gethostname())}\s", out, re.M)


def test_node_waiter_hears_its_position_move_up_then_holds(
    make_daemon: Callable[..., Daemon], seat_node: Callable[..., NodeSeat]
) -> None:
    """WaitForSeat positions stream: 2, then 1 when the waiter ahead gives up; then a seat."""
    daemon = make_daemon("--dev-seats", "1")
    holder = seat_node("hold", "--target", daemon.target, "--user", "AA")
    holder.session_id()
    ahead = seat_node("hold", "--target", daemon.target, "--user", "W1", "--wait", "2")
    assert ahead.expect("waiting for a seat") == "waiting for a seat: position 1"
    behind = seat_node("hold", "--target", daemon.target, "--user", "W2", "--wait", "60")
    assert behind.expect("waiting for a seat") == "waiting for a seat: position 2"
    assert ahead.exit_code() == 2
    assert behind.expect("waiting for a seat") == "waiting for a seat: position 1"
    holder.proc.send_signal(signal.SIGINT)
    assert holder.exit_code() == 0
    sid = behind.session_id()
    assert [s["id"] for s in daemon.sessions()["sessions"]] == [sid]


def test_node_waiter_interrupted_leaves_the_queue(
    make_daemon: Callable[..., Daemon], seat_node: Callable[..., NodeSeat]
) -> None:
    """SIGINT while queued cancels the wait (exit 2, no seat) and the waiter behind moves up."""
    daemon = make_daemon("--dev-seats", "1")
    seat_node("hold", "--target", daemon.target, "--user", "AA").session_id()
    ahead = seat_node("hold", "--target", daemon.target, "--user", "W1", "--wait", "60")
    assert ahead.expect("waiting for a seat") == "waiting for a seat: position 1"
    behind = seat_node("hold", "--target", daemon.target, "--user", "W2", "--wait", "60")
    assert behind.expect("waiting for a seat") == "waiting for a seat: position 2"
    ahead.proc.send_signal(signal.SIGINT)
    assert ahead.exit_code() == 2
    assert behind.expect("waiting for a seat") == "waiting for a seat: position 1"


@pytest.mark.parametrize(("policy", "allowed"), [("anyone", True), ("same-user", False)])
def test_node_takeover_follows_the_policy(
    make_daemon: Callable[..., Daemon],
    seat_node: Callable[..., NodeSeat],
    policy: str,
    allowed: bool,
) -> None:
    """Another user takes the seat over where the policy allows it (the victim hears who and
    why) and is refused, naming the policy, where it does not."""
    daemon = make_daemon("--dev-seats", "1", "--takeover", policy)
    victim = seat_node("hold", "--target", daemon.target, "--user", "AA")
    sid = victim.session_id()
    taker = seat_node(
        "hold", "--target", daemon.target, "--user", "BB", "--evict", str(sid), "--reason", "urgent"
    )
    if not allowed:
        assert policy in taker.expect("seat:")
        assert taker.exit_code() == 2
        assert [s["id"] for s in daemon.sessions()["sessions"]] == [sid]
        return
    taker.session_id()
    assert re.fullmatch(r"evicted: urgent \(by BB@.+\)", victim.expect("evicted:"))
    assert victim.exit_code() == 3


def test_node_seat_survives_a_sigkilled_daemon_on_the_same_session(
    make_daemon: Callable[..., Daemon], seat_node: Callable[..., NodeSeat]
) -> None:
    """Daemon SIGKILLed and restarted: jeopardy, then active again on the same session id."""
    daemon = make_daemon("--dev-seats", "1")
    held, sid = hold_attached(daemon, seat_node)
    daemon.kill9()
    assert held.expect("state:") == "state: jeopardy"
    daemon.start()
    assert held.expect("state:") == "state: active"
    wait_for(lambda: attached(daemon, sid), 10, "reattached")
    assert [s["id"] for s in daemon.sessions()["sessions"]] == [sid]


def test_node_seat_hears_draining_and_comes_back_on_the_same_session(
    make_daemon: Callable[..., Daemon], seat_node: Callable[..., NodeSeat]
) -> None:
    """SIGTERM: the client is told the daemon is restarting, keeps its seat and reattaches."""
    daemon = make_daemon()
    held, sid = hold_attached(daemon, seat_node)
    assert daemon.stop() == 0
    assert held.expect("daemon restarting: reattaching in about ")
    daemon.start()
    assert held.expect("state: active")
    wait_for(lambda: attached(daemon, sid), 10, "reattached")
    assert [s["id"] for s in daemon.sessions()["sessions"]] == [sid]


def test_node_idle_holder_is_warned_then_evicted_for_the_waiter(
    make_daemon: Callable[..., Daemon], tmp_path: Path, seat_node: Callable[..., NodeSeat]
) -> None:
    """One seat, held by an idle `seat-node hold --report-idle`; BB waits: the holder prints
    the policy's warning, then the eviction with its reason, exits 3; BB gets the seat."""
    daemon, _ = policy_daemon(make_daemon, tmp_path, IDLE.format(warn="1s"), seats=1)
    holder = seat_node("hold", "--target", daemon.target, "--user", "AA", "--report-idle")
    holder.session_id()
    granted: list[int] = []
    with SeatClient(daemon.target) as client:
        waiter = wait_in_queue(client, granted, wait=30)
        assert "the seat goes to a waiting user" in holder.expect("idle warning:")
        evicted = holder.expect("evicted:")
        assert evicted.startswith("evicted: idle for ")
        assert evicted.endswith("; the seat went to a waiting user (by policy)")
        assert holder.exit_code() == 3
        waiter.join(30)
        assert granted, "the waiting user was not served"


def test_node_activity_withdraws_the_idle_warning(
    make_daemon: Callable[..., Daemon], tmp_path: Path, seat_node: Callable[..., NodeSeat]
) -> None:
    """A line typed after the warning is activity: the warning is withdrawn and the seat
    stays with the Node holder."""
    daemon, _ = policy_daemon(make_daemon, tmp_path, IDLE.format(warn="1.5s"), seats=1)
    holder = seat_node("hold", "--target", daemon.target, "--user", "AA", "--report-idle")
    sid = holder.session_id()
    with SeatClient(daemon.target) as client:
        wait_in_queue(client, [], wait=5)
        holder.expect("idle warning:")
        holder.type_line()
        assert holder.expect("idle warning withdrawn:").startswith(
            "idle warning withdrawn: activity seen"
        )
        assert [s["id"] for s in daemon.sessions()["sessions"]] == [sid]
    holder.proc.send_signal(signal.SIGTERM)
    assert holder.exit_code() == 0
