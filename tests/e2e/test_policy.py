"""Seat policy end to end: the real daemon with a [policy] in its config file, real clients
and the `seat` command. Short real durations for idle reclaim; every wait is on a condition
with a bounded deadline."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from seatclient import PolicyRefused, SeatClient, SeatError, SeatState

from tests.e2e.conftest import BIN, Daemon, read_until, wait_for

pytestmark = pytest.mark.e2e

MONTH_END = """
[policy.groups.accounting]
users = ["ANNA", "BORIS"]
reserve = 1

[policy.groups.interns]
users = ["IA", "IB", "IC"]
max = {interns_max}
"""


def policy_daemon(
    make_daemon: Callable[..., Daemon], tmp_path: Path, text: str, seats: int
) -> tuple[Daemon, Path]:
    config = tmp_path / "seatd.toml"
    config.write_text(text)
    return make_daemon("--config", str(config), "--dev-seats", str(seats)), config


def test_a_reservation_holds_a_seat_for_its_group(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """cap 2, accounting reserves 1: a second outsider is refused naming the reservation;
    an accountant still gets the seat."""
    daemon, _ = policy_daemon(make_daemon, tmp_path, MONTH_END.format(interns_max=2), seats=2)
    with SeatClient(daemon.target) as client:
        client.acquire(user_code="ZED")
        with pytest.raises(PolicyRefused) as refused:
            client.acquire(user_code="YVES")
        assert refused.value.code == "POLICY_RESERVED"
        assert str(refused.value).startswith("1 seat is reserved for accounting")
        anna = client.acquire(user_code="ANNA")
        assert anna.state is SeatState.ACTIVE


def test_a_max_refuses_with_the_rules_name(
    make_daemon: Callable[..., Daemon],
    tmp_path: Path,
    seat: Callable[..., subprocess.Popen[str]],
) -> None:
    """The second intern's `seat hold` prints the rule and its group and exits 8; the
    journal holds the rule too."""
    daemon, _ = policy_daemon(make_daemon, tmp_path, MONTH_END.format(interns_max=1), seats=5)
    with SeatClient(daemon.target) as client:
        client.acquire(user_code="IA")
        proc = seat("hold", "--target", daemon.target, "--user", "IB")
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 8
    assert "rule max of group interns" in err and "group interns is at its max of 1" in err
    journal = daemon.ctl("journal", "--json")
    assert "POLICY_MAX: group interns is at its max of 1" in journal.stdout


IDLE = """
[policy.idle]
reclaim_after = "2s"
warn_before = "{warn}"
"""


@pytest.fixture
def idle_holder() -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """`seat hold --report-idle` for AA, with a pipe on stdin to type activity into."""
    procs: list[subprocess.Popen[str]] = []

    def run(target: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [str(BIN / "seat"), "hold", "--target", target, "--user", "AA", "--report-idle"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc

    yield run
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)


def wait_in_queue(client: SeatClient, granted: list[int], wait: float) -> threading.Thread:
    """BB queues for the seat in a thread; `granted` gets its session id once served."""

    def run() -> None:
        # A wait that runs out is no error here: the test says whether BB should be served.
        with contextlib.suppress(SeatError):
            granted.append(client.acquire(user_code="BB", wait=wait).session_id)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_an_idle_workstation_is_warned_then_evicted_and_the_waiter_served(
    make_daemon: Callable[..., Daemon],
    tmp_path: Path,
    idle_holder: Callable[[str], subprocess.Popen[str]],
) -> None:
    """One seat, held by an idle `seat hold`; BB waits: the holder prints the warning, then
    the eviction by the policy with the reason, and BB gets the seat."""
    daemon, _ = policy_daemon(make_daemon, tmp_path, IDLE.format(warn="1s"), seats=1)
    holder = idle_holder(daemon.target)
    read_until(holder, "holding session ")
    granted: list[int] = []
    with SeatClient(daemon.target) as client:
        waiter = wait_in_queue(client, granted, wait=30)
        assert "the seat goes to a waiting user" in read_until(holder, "idle warning:")
        evicted = read_until(holder, "evicted:")
        assert evicted.startswith("evicted: idle for ")
        assert evicted.endswith("; the seat went to a waiting user (by policy)")
        assert holder.wait(10) == 3
        waiter.join(30)
        assert granted, "the waiting user was not served"


def test_activity_cancels_the_warning(
    make_daemon: Callable[..., Daemon],
    tmp_path: Path,
    idle_holder: Callable[[str], subprocess.Popen[str]],
) -> None:
    """A line typed after the warning is activity: the warning is withdrawn and the seat
    stays with its holder."""
    daemon, _ = policy_daemon(make_daemon, tmp_path, IDLE.format(warn="1.5s"), seats=1)
    holder = idle_holder(daemon.target)
    sid = int(read_until(holder, "holding session ").split()[-1])
    with SeatClient(daemon.target) as client:
        wait_in_queue(client, [], wait=5)
        read_until(holder, "idle warning:")
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        withdrawn = read_until(holder, "idle warning withdrawn:")
        assert withdrawn.startswith("idle warning withdrawn: activity seen")
        assert [s["id"] for s in daemon.sessions()["sessions"]] == [sid]
    holder.send_signal(signal.SIGTERM)
    assert holder.wait(10) == 0


def test_a_sighup_policy_change_takes_effect_without_dropping_a_session(
    make_daemon: Callable[..., Daemon],
    tmp_path: Path,
    holder_process: Callable[[str, str], tuple[subprocess.Popen[str], int]],
) -> None:
    """Two interns hold seats under max 2; the config now says max 1 and SIGHUP reloads
    it: both sessions stay, a third intern is refused with the new max."""
    daemon, config = policy_daemon(make_daemon, tmp_path, MONTH_END.format(interns_max=3), seats=5)
    _, first = holder_process(daemon.target, "IA")
    _, second = holder_process(daemon.target, "IB")
    config.write_text(MONTH_END.format(interns_max=1))
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "event=daemon.reloaded" in daemon.log_path.read_text(), 20, "the reload")
    assert [s["id"] for s in daemon.sessions()["sessions"]] == [first, second]
    with SeatClient(daemon.target) as client, pytest.raises(PolicyRefused) as refused:
        client.acquire(user_code="IC")
    assert str(refused.value) == "group interns is at its max of 1"
    assert [s["id"] for s in daemon.sessions()["sessions"]] == [first, second]


def test_seatctl_shows_the_policy_and_dry_runs_a_new_one(
    make_daemon: Callable[..., Daemon],
    tmp_path: Path,
    holder_process: Callable[[str, str], tuple[subprocess.Popen[str], int]],
) -> None:
    """`seatctl policy show --json` counts the interns seated; `policy check FILE` names the
    session a max of 1 would refuse and changes nothing; sessions list the group."""
    daemon, _ = policy_daemon(make_daemon, tmp_path, MONTH_END.format(interns_max=2), seats=5)
    holder_process(daemon.target, "IA")
    holder_process(daemon.target, "IB")
    shown = json.loads(daemon.ctl("policy", "show", "--json").stdout)
    assert [(g["name"], g["in_use"]) for g in shown["groups"]] == [
        ("accounting", 0),
        ("interns", 2),
    ]
    tighter = tmp_path / "tighter.toml"
    tighter.write_text(MONTH_END.format(interns_max=1))
    checked = daemon.ctl("policy", "check", str(tighter), "--json")
    assert checked.returncode == 0, checked.stderr
    breaches = json.loads(checked.stdout)["breaches"]
    assert {b["user_code"] for b in breaches} == {"IA", "IB"}
    assert {b["reason"] for b in breaches} == {"POLICY_MAX"}
    assert [s["group"] for s in daemon.sessions()["sessions"]] == ["interns", "interns"]
    assert json.loads(daemon.ctl("policy", "show", "--json").stdout) == shown
