"""The test etcd cluster itself (tests/etcd.py): it never outlives the process that started it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import etcd

ROOT = Path(__file__).resolve().parents[2]
# Bounded waits for a loaded machine.
START = 90.0
GONE = 30.0

STARTER = """
import sys, time
from pathlib import Path
from tests.etcd import EtcdCluster

cluster = EtcdCluster(Path(sys.argv[1]))
pids = " ".join(str(cluster.pid(i)) for i in range(len(cluster.names)))
Path(sys.argv[2] + ".partial").write_text(pids)
Path(sys.argv[2] + ".partial").replace(sys.argv[2])
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaps yet counts as gone: it holds no port, no file)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_members_die_with_a_parent_killed_by_sigkill(tmp_path: Path) -> None:
    """kill -9 of the python that started a 3-member cluster: every member is gone within
    a bounded wait (no etcd left running for hours under /tmp)."""
    pids_file = tmp_path / "pids"
    parent = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path / "etcd"), str(pids_file)], cwd=ROOT
    )
    pids: list[int] = []
    try:
        deadline = time.monotonic() + START
        while not pids_file.exists():
            assert parent.poll() is None, "the starter exited before the cluster was up"
            assert time.monotonic() < deadline, "the cluster did not start in time"
            time.sleep(0.1)
        pids = [int(p) for p in pids_file.read_text().split()]
        assert len(pids) == 3 and all(alive(p) for p in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait(GONE)
        deadline = time.monotonic() + GONE
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in pids if alive(p)] == []
    finally:
        # Whatever failed, leave no member behind (on the code this test guards against,
        # they would all still run).
        if parent.poll() is None:
            parent.kill()
            parent.wait(GONE)
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_port_taken_between_pick_and_bind_is_picked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port another process binds after the fixture picked it does not fail the cluster."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        picks = iter([port])  # the first pick (m0's client port) is the one just taken
        free_port = etcd.free_port
        monkeypatch.setattr(etcd, "free_port", lambda: next(picks, None) or free_port())
        with etcd.EtcdCluster(tmp_path / "etcd", 1) as cluster:
            assert f"127.0.0.1:{port}" not in cluster.endpoints
        assert b"address already in use" in (tmp_path / "etcd/m0.port-taken-1.log").read_bytes()
