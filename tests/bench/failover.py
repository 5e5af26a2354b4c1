"""The failover figure: SIGKILL the cluster's leader under SEATD_BENCH_FAILOVER_SESSIONS held
seats (default 1,000, each its own client and connection), until every one is ACTIVE again on
its own id; with the split read from the new leader's log (detection, election, load) and the
clients (reattach). A 3-member etcd and two seatd instances, all on loopback. Beside it, the
CPU each side spent from the SIGKILL until every seat was back: on one machine the load
generators and etcd take from the new leader what separate workstations would not."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.e2e.cluster import Member
from tests.etcd import EtcdCluster

SESSIONS = int(os.environ.get("SEATD_BENCH_FAILOVER_SESSIONS", "1000"))
PROCESSES = 4
LEASE_TTL = os.environ.get("SEATD_BENCH_FAILOVER_TTL", "2")
Row = Callable[[str, float, str, str, float | None, str, bool | None], None]
STAMP = re.compile(r"timestamp=(\S+) .*event=(cluster\.leader_gone|cluster\.elected|daemon\.ready)")


def _events(log: str) -> dict[str, float]:
    """The first wall time (epoch seconds) of each event in a seatd log."""
    found: dict[str, float] = {}
    for when, event in STAMP.findall(log):
        found.setdefault(event, datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp())
    return found


def failover(
    work: Path,
    row: Row,
    ask: Callable[..., list[Any]],
    root: Path,
    cpu_seconds: Callable[[int], float],
) -> None:
    with EtcdCluster(work / "etcd") as etcd:
        sockets = Path(tempfile.mkdtemp(prefix="sf-", dir="/tmp"))
        flags = [
            "--etcd",
            ",".join(f"http://{e}" for e in etcd.endpoints),
            "--site",
            "bench",
            "--dev-seats",
            str(SESSIONS),
            "--metrics-listen",
            "",
        ]
        env_ttl = ["--config", str(_config(work, LEASE_TTL))]
        members = [
            Member(f"f{i}", work, sockets / f"f{i}.sock", [*flags, *env_ttl]).start()
            for i in range(2)
        ]
        procs: list[subprocess.Popen[str]] = []
        try:
            leader = _leader(members)
            targets = ",".join(m.target for m in members)
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tests.bench.workstations",
                        targets,
                        str(SESSIONS // PROCESSES),
                        f"F{k}",
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    cwd=root,
                    text=True,
                )
                for k in range(PROCESSES)
            ]
            taken = ask(procs, None, 300)
            held = sum(t["held"] for t in taken)
            ids = {i for t in taken for i in t["ids"]}
            standby = next(m for m in members if m is not leader)
            before = standby.text()
            assert standby.proc is not None
            sides = {
                "new leader": [standby.proc.pid],
                f"{PROCESSES} workstation processes": [p.pid for p in procs],
                "etcd, 3 members": [etcd.pid(i) for i in range(3)],
            }

            def spent() -> dict[str, float]:
                return {side: sum(cpu_seconds(pid) for pid in pids) for side, pids in sides.items()}

            cpu_before = spent()
            killed_wall, killed = time.time(), time.monotonic()
            leader.kill9()
            storm = ask(procs, f"storm {killed} {killed}", 120)
            cpu = {side: used - cpu_before[side] for side, used in spent().items()}
            back = [b for s in storm for b in s["back"]]
            not_back = sum(s["not_back"] for s in storm)
            lost = sum(s["lost"] for s in storm)
            listed = standby.ctl("sessions", "--json")
            on_new = {s["id"] for s in json.loads(listed.stdout)["sessions"]}
            marks = _events(standby.text()[len(before) :])
        finally:
            for p in procs:
                try:
                    ask([p], "release", 120)
                except Exception:
                    p.kill()
            for m in members:
                if m.alive():
                    m.stop()
    slowest = max(back, default=float("inf"))
    gone = marks.get("cluster.leader_gone", float("nan")) - killed_wall
    elected = marks.get("cluster.elected", float("nan")) - killed_wall
    ready = marks.get("daemon.ready", float("nan")) - killed_wall
    row(
        f"failover, SIGKILL leader, {held} sessions: all ACTIVE again",
        slowest,
        "s",
        "lease ttl",
        slowest / float(LEASE_TTL),
        "<= 5 s",
        slowest <= 5 and not_back == 0,
    )
    row("  detection (leader key gone)", gone, "s", "-", None, f"<= ttl {LEASE_TTL} s", None)
    row("  election (standby elected)", elected - gone, "s", "-", None, "", None)
    row("  load (table loaded, serving)", ready - elected, "s", "-", None, "", None)
    row("  reattach (last workstation back)", slowest - ready, "s", "-", None, "", None)
    for side, used in cpu.items():
        row(f"  CPU, SIGKILL to all back: {side}", used, "s", "-", None, "", None)
    missing = len(ids - on_new)
    row(
        "failover: sessions lost + double grants",
        missing + lost + len(on_new - ids),
        "-",
        "-",
        None,
        "0",
        missing + lost == 0 and on_new == ids,
    )


def _config(work: Path, ttl: str) -> Path:
    path = work / "failover.toml"
    path.write_text(f"[cluster]\nlease_ttl = {ttl}\n")
    return path


def _leader(members: list[Member]) -> Member:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        serving = [m for m in members if m.serving()]
        if len(serving) == 1:
            return serving[0]
        time.sleep(0.05)
    raise RuntimeError("no leader within 60 s")
