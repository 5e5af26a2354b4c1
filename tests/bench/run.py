"""`make bench`: seatd's figures, each against a baseline measured in the same run.

Loops are bounded and every process is stopped at the end. Writes var/bench.json and prints
a table. Sizes are set by environment variables (SEATD_BENCH_SESSIONS, ...) so a smaller run
fits a busy machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import lmdb
from seatclient.v1 import admin_pb2, admin_pb2_grpc, seat_pb2, seat_pb2_grpc

from seatd.arbiter import LeaseTerms
from tests.bench import attacks, policies
from tests.bench import failover as cluster_failover

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
SECONDS = float(os.environ.get("SEATD_BENCH_SECONDS", "5"))
SESSIONS = int(os.environ.get("SEATD_BENCH_SESSIONS", "10000"))
WORKSTATIONS = int(os.environ.get("SEATD_BENCH_WORKSTATIONS", "5000"))
HOLD_SECONDS = float(os.environ.get("SEATD_BENCH_HOLD_SECONDS", "120"))
SCALE_SESSIONS = int(os.environ.get("SEATD_BENCH_SCALE_SESSIONS", "50000"))
SCALE_CONNECTIONS = int(os.environ.get("SEATD_BENCH_SCALE_CONNECTIONS", "500"))
SCALE_LOADERS = 5
# The most sessions this 2-core machine was measured to hold at the shipped keepalive interval
# with no false expiration (issue 16's 50,000 is past what bare grpc.aio carries here).
SCALE_HELD = int(os.environ.get("SEATD_BENCH_SCALE_HELD", "20000"))
SCALE_HELD_CONNECTIONS = int(os.environ.get("SEATD_BENCH_SCALE_HELD_CONNECTIONS", "200"))
RATES = (500, 1000)  # open loop, acquires offered per second
LOADERS, PER_LOADER = 2, 8  # 16 concurrent clients
PEER_CLIENTS = (1, 16, 64)
PEER_REPEATS = int(os.environ.get("SEATD_BENCH_PEER_REPEATS", "3"))
PEER_SECONDS = float(os.environ.get("SEATD_BENCH_PEER_SECONDS", "5"))
# Another seatd tree (a `git worktree` of an older commit), measured in the same run beside
# this one: the peer table's before and after.
PEER_BEFORE = os.environ.get("SEATD_BENCH_PEER_BEFORE", "")

rows: list[dict[str, Any]] = []


def row(
    figure: str,
    value: float,
    unit: str,
    baseline: str,
    ratio: float | None,
    target: str,
    ok: bool | None,
) -> None:
    rows.append(
        {
            "figure": figure,
            "value": round(value, 4),
            "unit": unit,
            "baseline": baseline,
            "ratio": None if ratio is None else round(ratio, 3),
            "target": target,
            "pass": ok,
        }
    )
    mark = "" if ok is None else ("ok" if ok else "SHORT")
    r = "-" if ratio is None else f"{ratio:.2f}"
    print(f"{figure:<58} {value:>12.4f} {unit:<8} {r:>7}  {target:<28} {mark}", flush=True)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


# -- baselines ---------------------------------------------------------------------------------


def fsync_floor(directory: Path, n: int = 200) -> float:
    path = directory / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    t = time.monotonic()
    for _ in range(n):
        os.pwrite(fd, b"x" * 4096, 0)
        os.fsync(fd)
    elapsed = time.monotonic() - t
    os.close(fd)
    path.unlink()
    return n / elapsed


def lmdb_commits(directory: Path, n: int = 300) -> float:
    env = lmdb.open(str(directory / "probe.lmdb"), map_size=1 << 26)
    t = time.monotonic()
    for i in range(n):
        with env.begin(write=True) as txn:
            txn.put(i.to_bytes(8, "big"), b"x" * 200)
    elapsed = time.monotonic() - t
    env.close()
    return n / elapsed


def loaders(
    mode: str, target: str, each: float = PER_LOADER, seconds: float = SECONDS
) -> list[float]:
    """LOADERS load processes; `each` is a concurrency (closed loop) or a rate (open loop)."""
    procs = [
        subprocess.Popen(
            [PY, "-m", "tests.bench.load", mode, target, str(each), str(seconds)],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        for _ in range(LOADERS)
    ]
    latencies: list[float] = []
    for p in procs:
        out, _ = p.communicate(timeout=seconds + 120)
        latencies += json.loads(out.splitlines()[-1])  # after the closed loop's "go"
    return latencies


# -- the daemon ---------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Daemon:
    def __init__(self, state: Path, *flags: str, root: Path = ROOT) -> None:
        """seatd with `flags`, its state in `state`, its code from the tree at `root`."""
        self.state, self.flags, self.root = state, list(flags), root
        self.socket = Path(tempfile.mkdtemp(prefix="sb-", dir="/tmp")) / "a.sock"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.state.parent / f"{self.state.name}.log"

    def start(self) -> float:
        log = self.log
        t = time.monotonic()
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    PY,
                    "-m",
                    "seatd",
                    "serve",
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--state-dir",
                    str(self.state),
                    "--admin-socket",
                    str(self.socket),
                    "--metrics-listen",
                    "",
                    *self.flags,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                # `-m seatd` from the tree's own code, whichever tree the venv installed.
                env={**os.environ, "PYTHONPATH": str(self.root)},
            )
        deadline = t + 60
        seen = log.read_text().count("event=daemon.ready")
        while time.monotonic() < deadline:
            text = log.read_text()
            found = re.findall(r"event=daemon\.ready listen=[\d.]+:(\d+)", text)
            if len(found) > seen:
                self.port = int(found[-1])
                return time.monotonic() - t
            if self.proc.poll() is not None:
                raise RuntimeError(f"seatd exited:\n{text[-2000:]}")
            time.sleep(0.01)
        raise RuntimeError("seatd did not start")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        assert self.proc is not None
        return rss_kib(self.proc.pid)

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)

    def admin(self) -> admin_pb2_grpc.AdminServiceStub:
        return admin_pb2_grpc.AdminServiceStub(grpc.insecure_channel(f"unix:{self.socket}"))

    def kill(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)


class EchoServer:
    """The bare grpc.aio echo server (baseline), in its own process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [PY, "-m", "tests.bench.echo_server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        assert self.proc.stdout is not None
        self.target = f"127.0.0.1:{int(self.proc.stdout.readline())}"

    def stop(self) -> None:
        self.proc.communicate("", timeout=30)


def until(predicate: Callable[[], bool], timeout: float) -> float:
    t = time.monotonic()
    while not predicate():
        if time.monotonic() - t > timeout:
            return float("inf")
        time.sleep(0.005)
    return time.monotonic() - t


# -- figures -------------------------------------------------------------------------------------


def throughput(work: Path) -> None:
    echo = EchoServer()
    base = loaders("echo", echo.target)
    echo.stop()
    base_rate, base_p99 = len(base) / SECONDS, pct(base, 0.99)
    row("baseline: bare grpc.aio echo, 16 clients", base_rate, "calls/s", "-", None, "", None)
    row("baseline: echo p99", base_p99 * 1000, "ms", "-", None, "", None)
    daemon = Daemon(work / "thr")
    daemon.start()
    pairs = loaders("acquire", daemon.target)
    daemon.kill()
    rate = 2 * len(pairs) / SECONDS
    per_call_p99 = pct(pairs, 0.99) / 2
    row(
        "durable acquire+release, 16 clients",
        rate,
        "calls/s",
        "echo calls/s",
        rate / base_rate,
        ">= 0.5 x echo",
        rate / base_rate >= 0.5,
    )
    row(
        "durable acquire+release p99 (per call)",
        per_call_p99 * 1000,
        "ms",
        "echo p99",
        per_call_p99 / base_p99,
        "<= 3 x echo p99",
        per_call_p99 <= 3 * base_p99,
    )


def arbiter_pairs(policy_text: str, pairs: int = 20_000) -> float:
    """Grant + release pairs per second on the bare arbiter, from 200 workstations."""
    from datetime import UTC, datetime

    from seatd.arbiter import Arbiter, LeaseTerms
    from seatd.model import Holder, Instant
    from seatd.policy import Policy, parse_text

    arbiter = Arbiter(LeaseTerms(), policy=parse_text(policy_text) if policy_text else Policy())
    holders = [Holder(f"B{i}", "", f"pc-{i}", "127.0.0.1", "bench") for i in range(200)]
    now = Instant(0.0, datetime(2026, 1, 1, tzinfo=UTC))
    t = time.perf_counter()
    for n in range(pairs):
        s = arbiter.grant(holders[n % 200], key=f"k{n}", token="t", now=now, cap=100_000).session
        arbiter.release(s.id, "t", now)
    return pairs / (time.perf_counter() - t)


def policy_cost(work: Path) -> None:
    """Acquire + release throughput under a seat policy of 20 groups and 50 rules, as a
    ratio to the same daemon without one; the two alternate twice in one run, so a busy
    machine slows both alike."""
    config = work / "policy.toml"
    config.write_text(policies.policy_toml())
    rates: dict[str, list[float]] = {"none": [], "policy": []}
    for round_ in range(2):
        for name, flags in (("none", []), ("policy", ["--config", str(config)])):
            daemon = Daemon(work / f"policy-{name}-{round_}", "--dev-seats", "100000", *flags)
            daemon.start()
            try:
                rates[name].append(2 * len(loaders("acquire", daemon.target)) / SECONDS)
            finally:
                daemon.kill()
    # The durable path above is bound by fsync; the decision itself, in process, shows what
    # the policy costs the arbiter (one pair = a grant and a release, no I/O).
    decide = {name: arbiter_pairs(p) for name, p in (("none", ""), ("policy", config.read_text()))}
    row(
        "arbiter grant+release, no policy (in process)",
        decide["none"],
        "pairs/s",
        "-",
        None,
        "",
        None,
    )
    row(
        "arbiter grant+release, 20 groups / 50 rules",
        decide["policy"],
        "pairs/s",
        "no policy",
        decide["policy"] / decide["none"],
        "",
        None,
    )
    bare, ruled = sum(rates["none"]) / 2, sum(rates["policy"]) / 2
    row("acquire+release, no seat policy, 16 clients", bare, "calls/s", "-", None, "", None)
    row(
        "acquire+release, policy of 20 groups / 50 rules",
        ruled,
        "calls/s",
        "no policy",
        ruled / bare,
        ">= 0.9 x no policy",
        ruled / bare >= 0.9,
    )


def closed_loop(mode: str, target: str, clients: int, server_pid: int) -> tuple[list[float], float]:
    """One closed-loop run from one load process (one channel): its pair latencies, and the
    server's CPU seconds from the moment the loop was warm until it ended."""
    p = subprocess.Popen(
        [PY, "-m", "tests.bench.load", mode, target, str(clients), str(PEER_SECONDS)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    try:
        assert p.stdout is not None
        go = p.stdout.readline()
        if go.strip() != "go":
            raise RuntimeError(f"{mode} load did not start: {go!r}")
        cpu0 = cpu_seconds(server_pid)
        out, _ = p.communicate(timeout=PEER_SECONDS + 120)
        return json.loads(out), cpu_seconds(server_pid) - cpu0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def median(values: list[float]) -> float:
    return pct(values, 0.5)


def peer(work: Path) -> None:
    """The alternative a vendor would pick: seats arbitrated with etcd's lease API, next to
    seatd and the bare echo, by the same client loop, interleaved over PEER_REPEATS rounds.
    Both stores write to the same filesystem (var/), both durable."""
    from tests.etcd import EtcdCluster

    servers: tuple[str, ...] = ("etcd", "acquire", "echo3")
    names = {"etcd": "etcd claim+revoke", "acquire": "seatd acquire+release", "echo3": "echo x3"}
    if PEER_BEFORE:
        servers += ("before",)
        names["before"] = f"seatd at {Path(PEER_BEFORE).name}"
    (ROOT / "var").mkdir(exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="peer-", dir=ROOT / "var"))
    rates: dict[tuple[str, int], list[float]] = {}
    cpus: dict[tuple[str, int], list[float]] = {}
    latencies: dict[tuple[str, int], list[float]] = {}
    daemon = Daemon(state / "seatd")
    before = Daemon(state / "before", root=Path(PEER_BEFORE)) if PEER_BEFORE else None
    echo: EchoServer | None = None
    try:
        with EtcdCluster(state / "etcd", members=1) as etcd:
            daemon.start()
            assert daemon.proc is not None
            echo = EchoServer()
            where = {
                "etcd": (etcd.endpoints[0], etcd.pid(0)),
                "acquire": (daemon.target, daemon.proc.pid),
                "echo3": (echo.target, echo.proc.pid),
            }
            if before is not None:
                before.start()
                assert before.proc is not None
                where["before"] = (before.target, before.proc.pid)
            for _ in range(PEER_REPEATS):
                for clients in PEER_CLIENTS:
                    for server in servers:
                        target, pid = where[server]
                        mode = "acquire" if server == "before" else server
                        lat, cpu = closed_loop(mode, target, clients, pid)
                        key = (server, clients)
                        rates.setdefault(key, []).append(len(lat) / PEER_SECONDS)
                        cpus.setdefault(key, []).append(cpu / max(1, len(lat)))
                        latencies.setdefault(key, []).extend(lat)
    finally:
        daemon.kill()
        if before is not None:
            before.kill()
        if echo is not None:
            echo.stop()
        shutil.rmtree(state, ignore_errors=True)
    print(
        f"\npeer: {PEER_REPEATS} x {PEER_SECONDS:.0f} s each, medians; "
        "latency per pair, server CPU per pair"
    )
    compare = " | before / etcd | CPU per pair, seatd / before |" if PEER_BEFORE else " |"
    print(f"| clients | {' | '.join(names[s] for s in servers)} | seatd / etcd{compare}")
    print(f"|---|{'---|' * len(servers)}---|{'---|---|' if PEER_BEFORE else ''}")
    for clients in PEER_CLIENTS:
        cells = []
        for server in servers:
            key = (server, clients)
            cells.append(
                f"{median(rates[key]):,.0f} pairs/s, p50 {median(latencies[key]) * 1000:.2f} ms, "
                f"p99 {pct(latencies[key], 0.99) * 1000:.1f} ms, "
                f"CPU {median(cpus[key]) * 1000:.2f} ms"
            )
        ratio = median(rates[("acquire", clients)]) / median(rates[("etcd", clients)])
        if PEER_BEFORE:
            was = median(rates[("before", clients)]) / median(rates[("etcd", clients)])
            cpu = median(cpus[("acquire", clients)]) / median(cpus[("before", clients)])
            cells.append(f"{ratio:.2f} | {was:.2f} | {cpu:.2f}")
        else:
            cells.append(f"{ratio:.2f}")
        print(f"| {clients} | {' | '.join(cells)} |")
    print()
    for clients in PEER_CLIENTS:
        seatd, etcd_ = ("acquire", clients), ("etcd", clients)
        for server in servers:
            row(
                f"peer, {clients} clients: {names[server]}",
                median(rates[(server, clients)]),
                "pairs/s",
                "-",
                None,
                "",
                None,
            )
        ratio = median(rates[seatd]) / median(rates[etcd_])
        row(
            f"peer, {clients} clients: seatd / etcd pairs/s",
            ratio,
            "x",
            "etcd pairs/s",
            ratio,
            ">= 1.0" if clients > 1 else "",
            ratio >= 1.0 if clients > 1 else None,
        )
        # Each compared in milliseconds; the goal (issue 16) applies at one client count.
        compared: tuple[tuple[str, Callable[[tuple[str, int]], float], int], ...] = (
            ("p50", lambda k: median(latencies[k]), 1),
            ("p99", lambda k: pct(latencies[k], 0.99), 16),
            ("CPU per pair", lambda k: median(cpus[k]), 16),
        )
        for what, measure, goal_at in compared:
            mine, theirs = measure(seatd) * 1000, measure(etcd_) * 1000
            goal = clients == goal_at
            row(
                f"peer, {clients} clients: seatd {what}",
                mine,
                "ms",
                f"etcd {theirs:.2f} ms",
                mine / theirs,
                "<= etcd" if goal else "",
                mine <= theirs if goal else None,
            )


def leading(target: str, timeout: float = 60.0) -> None:
    """Until the daemon at `target` grants (a cluster instance leads once it has won)."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as ch:
        stub = seat_pb2_grpc.SeatServiceStub(ch)
        while True:
            try:
                r = stub.Acquire(
                    seat_pb2.AcquireRequest(user_code="W", idempotency_key=os.urandom(8).hex()),
                    timeout=5,
                )
                stub.Release(
                    seat_pb2.ReleaseRequest(session_id=r.session_id, lease_token=r.lease_token),
                    timeout=5,
                )
                return
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def etcd_store(work: Path) -> None:
    """acquire+release through the etcd store: one seatd instance leading a 3-member etcd
    cluster, next to seatd on LMDB and to etcd's own claim+revoke on the same cluster, by the
    same client loop at 16 clients, interleaved over PEER_REPEATS rounds."""
    from tests.etcd import EtcdCluster, free_port

    clients = 16
    runs = {
        "etcd claim+revoke": "etcd",
        "seatd on LMDB": "acquire",
        "seatd on etcd": "acquire",
    }
    (ROOT / "var").mkdir(exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="etcd-store-", dir=ROOT / "var"))
    rates: dict[str, list[float]] = {}
    latencies: dict[str, list[float]] = {}
    on_lmdb = Daemon(state / "lmdb")
    on_etcd: Daemon | None = None
    try:
        with EtcdCluster(state / "etcd", members=3) as etcd:
            on_lmdb.start()
            port = free_port()
            on_etcd = Daemon(
                state / "on-etcd",
                "--etcd",
                ",".join(etcd.endpoints),
                "--site",
                "bench",
                "--advertise",
                f"127.0.0.1:{port}",
            )
            on_etcd.port = port
            on_etcd.start()
            leading(on_etcd.target)
            assert on_lmdb.proc is not None and on_etcd.proc is not None
            where = {
                "etcd claim+revoke": (etcd.endpoints[0], etcd.pid(0)),
                "seatd on LMDB": (on_lmdb.target, on_lmdb.proc.pid),
                "seatd on etcd": (on_etcd.target, on_etcd.proc.pid),
            }
            for _ in range(PEER_REPEATS):
                for name, mode in runs.items():
                    target, pid = where[name]
                    lat, _ = closed_loop(mode, target, clients, pid)
                    rates.setdefault(name, []).append(len(lat) / PEER_SECONDS)
                    latencies.setdefault(name, []).extend(lat)
    finally:
        on_lmdb.kill()
        if on_etcd is not None:
            on_etcd.kill()
        shutil.rmtree(state, ignore_errors=True)
    mine = "seatd on etcd"
    for name in runs:
        rate, p99 = median(rates[name]), pct(latencies[name], 0.99) * 1000
        row(f"etcd store, {clients} clients: {name}", rate, "pairs/s", "-", None, "", None)
        row(f"etcd store, {clients} clients: {name} p99", p99, "ms", "-", None, "", None)
    for other in ("seatd on LMDB", "etcd claim+revoke"):
        ratio = median(rates[mine]) / median(rates[other])
        row(f"etcd store: pairs/s vs {other}", ratio, "x", f"{other} pairs/s", ratio, "", None)
        p99 = pct(latencies[mine], 0.99) / pct(latencies[other], 0.99)
        row(f"etcd store: p99 vs {other}", p99, "x", f"{other} p99", p99, "", None)


def multiplexed(work: Path) -> None:
    """SESSIONS sessions, more than this machine can also host as client connections: the
    load generator multiplexes their keepalive streams over 100 connections."""
    held_sessions(work, "mux", SESSIONS, 100, 4)


def scale(work: Path) -> None:
    """The scale figure: SCALE_HELD sessions over SCALE_HELD_CONNECTIONS connections (the most
    held here), then issue 16's SCALE_SESSIONS over SCALE_CONNECTIONS."""
    held_sessions(work, "scale-held", SCALE_HELD, SCALE_HELD_CONNECTIONS, SCALE_LOADERS)
    held_sessions(work, "scale", SCALE_SESSIONS, SCALE_CONNECTIONS, SCALE_LOADERS)


class Holding:
    """`sessions` keepalive streams multiplexed over `connections` connections from `loaders`
    load processes (tests.bench.load hold), pinging every `interval`, against the server
    process `pid`: its CPU and RSS, and the load processes' CPU, measured over a window."""

    def __init__(
        self,
        mode: str,
        target: str,
        pid: int,
        sessions: int,
        connections: int,
        loaders: int,
        interval: float,
    ) -> None:
        self.pid, self.interval = pid, interval
        self.rss0, sockets0 = rss_kib(pid), sockets(pid)
        self.procs = [
            subprocess.Popen(
                [
                    PY,
                    "-m",
                    "tests.bench.load",
                    mode,
                    target,
                    str(sessions // loaders),
                    str(connections // loaders),
                    str(interval),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=ROOT,
                text=True,
            )
            for _ in range(loaders)
        ]
        t = time.monotonic()
        try:
            taken = ask(self.procs, None, 60 + sessions / 50)
        except BaseException:
            self.stop()
            raise
        self.ramp = time.monotonic() - t
        self.held = sum(r["held"] for r in taken)
        self.ids = {i for r in taken for i in r["ids"]}
        self.connections = sockets(pid) - sockets0

    def measure(self, seconds: float) -> dict[str, Any]:
        """Hold for `seconds` (the measurement window itself)."""
        before = ask(self.procs, "check", 60)
        cpu0, t0 = cpu_seconds(self.pid), time.monotonic()
        client0 = sum(cpu_seconds(p.pid) for p in self.procs)
        time.sleep(seconds)
        window = time.monotonic() - t0
        cpu = (cpu_seconds(self.pid) - cpu0) / window
        client = (sum(cpu_seconds(p.pid) for p in self.procs) - client0) / window
        rss = rss_kib(self.pid)
        after = ask(self.procs, "check", 60)
        pongs = sum(a["pongs"] for a in after) - sum(b["pongs"] for b in before)
        return {
            "cpu": cpu,
            "client": client,
            "kib": (rss - self.rss0) / max(1, self.held),
            "pong_s": pongs / window,
            "cpu_per_pong": cpu * window / max(1, pongs),
            "p99": pct([x for a in after for x in a["round_trips"]], 0.99),
            "lost": sum(a["lost"] for a in after),
            "active": sum(a["active"] for a in after),
        }

    def stop(self) -> None:
        for p in self.procs:
            with contextlib.suppress(Exception):
                ask([p], "stop", 120)


def bare_streams(sessions: int, connections: int, loaders: int, interval: float) -> dict[str, Any]:
    """The baseline: the same streams on the bare grpc.aio echo server, each ping echoed."""
    echo = EchoServer()
    try:
        bare = Holding(
            "hold-echo", echo.target, echo.proc.pid, sessions, connections, loaders, interval
        )
        try:
            return bare.measure(min(HOLD_SECONDS, 60))
        finally:
            bare.stop()
    finally:
        echo.stop()


def held_sessions(work: Path, name: str, sessions: int, connections: int, loaders: int) -> None:
    """`sessions` sessions, each with its keepalive stream pinging at the shipped interval,
    multiplexed over `connections` connections for HOLD_SECONDS. None may be lost: each is
    still attached on its own id at the end and the journal has no expiry. Baseline: the same
    streams on the bare grpc.aio echo server (`bare_streams`), measured after the daemon's."""
    interval = LeaseTerms().keepalive_interval
    daemon = Daemon(work / name, "--dev-seats", str(sessions))
    daemon.start()
    assert daemon.proc is not None
    try:
        try:
            holding = Holding(
                "hold", daemon.target, daemon.proc.pid, sessions, connections, loaders, interval
            )
        except TimeoutError:
            row(
                f"{sessions} sessions over {connections} connections: NOT HELD",
                float("nan"),
                "",
                "-",
                None,
                "every stream attached within the ramp bound",
                False,
            )
            return
        try:
            mine = holding.measure(HOLD_SECONDS)
            admin = admin_pb2_grpc.AdminServiceStub(
                grpc.insecure_channel(
                    f"unix:{daemon.socket}", options=[("grpc.max_receive_message_length", -1)]
                )
            )
            listed = admin.ListSessions(admin_pb2.ListSessionsRequest(), timeout=60).sessions
            ended = admin.ReadJournal(
                admin_pb2.ReadJournalRequest(
                    limit=1000, filter=admin_pb2.JournalFilter(kinds=["expired", "evicted"])
                ),
                timeout=60,
            ).entries
        finally:
            holding.stop()
    finally:
        daemon.kill(timeout=300)  # draining tens of thousands of streams takes a while
    try:
        base = bare_streams(sessions, connections, loaders, interval)
    except TimeoutError:  # the bare server could not take them all: seatd's rows still count
        base = dict.fromkeys(("cpu", "cpu_per_pong", "kib", "p99"), float("nan"))
        row(
            f"  {name}: bare grpc.aio echo could not take {sessions} streams (no ratios)",
            float("nan"),
            "",
            "-",
            None,
            "",
            None,
        )
    held, ids = holding.held, holding.ids
    attached = {s.id for s in listed if s.attached}
    expired = len(ended)  # expiries (and evictions) in the journal
    row(
        f"{held} sessions over {holding.connections} connections, {HOLD_SECONDS:.0f} s: "
        "false expirations",
        mine["lost"] + expired + len(ids - attached),
        "sessions",
        "-",
        None,
        f"0 (of {sessions} wanted)",
        mine["lost"] == expired == 0 and held == mine["active"] == sessions and ids <= attached,
    )
    row(
        f"  {name}: of which expiries in the journal",
        expired,
        "sessions",
        "-",
        None,
        "0",
        expired == 0,
    )
    row(
        f"  {name}: acquire + attach ramp ({loaders} load processes)",
        holding.ramp,
        "s",
        "-",
        None,
        "",
        None,
    )
    row(
        f"  {name}: pongs vs pings due at the {interval:g} s interval",
        mine["pong_s"],
        "pong/s",
        "held/interval",
        mine["pong_s"] / (held / interval),
        ">= 0.95",
        mine["pong_s"] >= 0.95 * held / interval,
    )
    row(
        f"  {name}: ping round trip p99",
        mine["p99"] * 1000,
        "ms",
        "bare echo p99",
        mine["p99"] / base["p99"],
        "",
        None,
    )
    row(
        f"  {name}: bare grpc.aio echo streams: server CPU",
        base["cpu"] * 100,
        "% core",
        "-",
        None,
        "",
        None,
    )
    row(
        f"  {name}: daemon CPU holding them",
        mine["cpu"] * 100,
        "% core",
        "bare echo",
        mine["cpu"] / base["cpu"],
        "",
        None,
    )
    row(
        f"  {name}: daemon CPU per ping",
        mine["cpu_per_pong"] * 1000,
        "ms",
        "bare grpc.aio",
        mine["cpu_per_pong"] / base["cpu_per_pong"],
        "",
        None,
    )
    row(
        f"  {name}: daemon RSS growth per session",
        mine["kib"],
        "KiB",
        "bare stream",
        mine["kib"] / base["kib"],
        "",
        None,
    )
    row(
        f"  {name}: load generators' CPU (all {loaders})",
        mine["client"] * 100,
        "% core",
        "daemon CPU",
        mine["client"] / max(mine["cpu"], 1e-9),
        "",
        None,
    )


def ask(procs: list[subprocess.Popen[str]], line: str | None, timeout: float) -> list[Any]:
    """Send a command line to every load process and read one JSON answer from each."""
    for p in procs:
        if line is not None:
            assert p.stdin is not None
            p.stdin.write(line + "\n")
            p.stdin.flush()
    answers = []
    deadline = time.monotonic() + timeout
    for p in procs:
        assert p.stdout is not None
        ready, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError(f"no answer to {line!r} within {timeout} s")
        answers.append(json.loads(p.stdout.readline()))
    return answers


def sockets(pid: int) -> int:
    return sum(
        1 for fd in Path(f"/proc/{pid}/fd").iterdir() if os.readlink(fd).startswith("socket:")
    )


def grpc_connection_rss(n: int = 1000) -> float:
    """Baseline: RSS growth of the bare grpc.aio echo server per idle client connection."""
    echo = EchoServer()
    before = rss_kib(echo.proc.pid)
    loaders = [
        subprocess.Popen(
            [PY, "-m", "tests.bench.load", "connect", echo.target, str(n // 4)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        for _ in range(4)
    ]
    ask(loaders, None, 120)
    grown = (rss_kib(echo.proc.pid) - before) / n
    for p in loaders:
        p.communicate("", timeout=60)
    echo.stop()
    return grown


def workstations(work: Path) -> None:
    """WORKSTATIONS real clients, each on its own connection, hold their seats with the
    default 10 s keepalives; then the daemon is SIGKILLed and restarted under them."""
    per_conn = grpc_connection_rss()
    row("baseline: bare grpc.aio RSS per idle connection", per_conn, "KiB", "-", None, "", None)
    daemon = Daemon(work / "ws", "--dev-seats", str(WORKSTATIONS))
    daemon.start()
    assert daemon.proc is not None
    rss0, sockets0 = daemon.rss_kib(), sockets(daemon.proc.pid)
    procs = [
        subprocess.Popen(
            [PY, "-m", "tests.bench.workstations", daemon.target, str(WORKSTATIONS // 4), f"W{k}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        for k in range(4)
    ]
    try:
        taken = ask(procs, None, 300)
        held = sum(t["held"] for t in taken)
        ids = {i for t in taken for i in t["ids"]}
        connections = sockets(daemon.proc.pid) - sockets0
        cpu0, t0 = daemon.cpu_seconds(), time.monotonic()
        time.sleep(HOLD_SECONDS)  # the measurement window itself
        cpu = (daemon.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        per_session = (daemon.rss_kib() - rss0) / max(1, held)
        hold = ask(procs, "hold", 60)
        lost = sum(h["lost"] for h in hold)
        row(
            f"{held} workstations, own connections, {HOLD_SECONDS:.0f} s: false expirations",
            lost,
            "sessions",
            "-",
            None,
            f"0 (of {WORKSTATIONS} wanted)",
            lost == 0 and held == WORKSTATIONS,
        )
        row(
            "  client connections the daemon held",
            connections,
            "sockets",
            "workstations",
            connections / max(1, held),
            "1 per workstation",
            connections >= held,
        )
        row(
            "  daemon RSS growth per session",
            per_session,
            "KiB",
            "grpc per conn",
            per_session / per_conn,
            "<= 64 KiB",
            per_session <= 64,
        )
        row("  daemon CPU holding them", cpu * 100, "% core", "-", None, "<= 40 %", cpu <= 0.4)
        log_before = daemon.log.read_text()
        killed = time.monotonic()
        daemon.kill(signal.SIGKILL)
        serving = daemon.start()
        up = time.monotonic()
        storm = ask(procs, f"storm {killed} {up}", 120)
        back = [b for s in storm for b in s["back"]]
        not_back = sum(s["not_back"] for s in storm)
        listed = daemon.admin().ListSessions(admin_pb2.ListSessionsRequest(), timeout=30)
        listed_ids = {s.id for s in listed.sessions}
        missing, extra = len(ids - listed_ids), len(listed_ids - ids)
        after = daemon.log.read_text()[len(log_before) :]
        internal = after.count("rpc.internal_error") + after.count("level=error")
        rejected = sum(s["lost"] for s in storm) + not_back
    finally:
        for p in procs:
            with contextlib.suppress(Exception):
                ask([p], "release", 120)
        daemon.kill()
    row(
        f"restart with {held} sessions: serving again",
        serving,
        "s",
        "-",
        None,
        "<= 2 s",
        serving <= 2,
    )
    slowest = max(back, default=float("inf"))
    row(
        "reattach storm: every workstation ACTIVE again",
        slowest,
        "s",
        "keepalive interval",
        slowest / 10,
        "<= 10 s after serving",
        slowest <= 10 and not_back == 0,
    )
    row(
        "reattach storm: INTERNAL errors + rejected seats",
        internal + rejected,
        "-",
        "-",
        None,
        "0",
        internal + rejected == 0,
    )
    row(
        "restart: seats lost (every id back, cap kept)",
        missing,
        "seats",
        "-",
        None,
        "0, no new id, cap kept",
        missing == 0 and extra == 0 and listed.in_use <= WORKSTATIONS,
    )


def open_loop(work: Path) -> None:
    """Acquires offered at a fixed rate (open loop), each against bare echo at the same rate."""
    echo = EchoServer()
    echo_target = echo.target
    daemon = Daemon(work / "open", "--dev-seats", str(sum(RATES) * int(SECONDS + 1) + 100))
    daemon.start()
    try:
        offered("open-echo", echo_target, RATES[0], 1)  # warm-up: connections, caches, pages
        offered("open-acquire", daemon.target, RATES[0], 1)
        for rate, target_ms in zip(RATES, (10, 25), strict=True):
            base = pct(offered("open-echo", echo_target, rate), 0.99)
            p99 = pct(offered("open-acquire", daemon.target, rate), 0.99)
            row(
                f"durable acquire p99, open loop at {rate}/s",
                p99 * 1000,
                "ms",
                f"echo p99 {base * 1000:.1f} ms",
                p99 / base,
                f"<= {target_ms} ms",
                p99 * 1000 <= target_ms,
            )
    finally:
        daemon.kill()
        echo.stop()


def offered(mode: str, target: str, rate: int, seconds: float = SECONDS) -> list[float]:
    return loaders(mode, target, rate / LOADERS, seconds)


async def _eviction(daemon: Daemon, n: int) -> list[float]:
    latencies = []
    admin = admin_pb2_grpc.AdminServiceStub(grpc.aio.insecure_channel(f"unix:{daemon.socket}"))
    async with grpc.aio.insecure_channel(daemon.target) as ch:
        stub = seat_pb2_grpc.SeatServiceStub(ch)
        for i in range(n):
            r = await stub.Acquire(
                seat_pb2.AcquireRequest(user_code=f"E{i}", idempotency_key=f"e{i}")
            )
            call = stub.Keepalive()
            await call.write(
                seat_pb2.KeepaliveRequest(
                    attach=seat_pb2.Attach(session_id=r.session_id, lease_token=r.lease_token)
                )
            )
            await call.read()
            reader = asyncio.ensure_future(call.read())
            await admin.Evict(admin_pb2.EvictRequest(session_id=r.session_id))
            returned = time.monotonic()
            await reader
            latencies.append(max(0.0, time.monotonic() - returned))
    return latencies


def eviction(work: Path) -> None:
    echo = EchoServer()
    base = pct(offered("open-echo", echo.target, 20, 5), 0.99)  # one message each way, idle
    echo.stop()
    daemon = Daemon(work / "evict")
    daemon.start()
    latencies = asyncio.run(_eviction(daemon, 100))
    daemon.kill()
    p99 = pct(latencies, 0.99)
    row(
        "eviction: Evict returned -> client event, p99",
        p99 * 1000,
        "ms",
        f"echo p99 {base * 1000:.1f} ms",
        p99 / base,
        "<= 50 ms",
        p99 <= 0.05,
    )


def dead_workstation(work: Path) -> None:
    grace = 2.0
    daemon = Daemon(work / "dead", "--reattach-grace", str(grace))
    daemon.start()
    holder = subprocess.Popen(
        [
            PY,
            "-c",
            (
                "import sys, threading; from seatclient import SeatClient; "
                "s = SeatClient(sys.argv[1]).acquire(user_code='D'); print('held', flush=True); "
                "threading.Event().wait(60)"
            ),
            daemon.target,
        ],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert holder.stdout is not None
    holder.stdout.readline()
    admin = daemon.admin()
    until(
        lambda: all(
            s.attached for s in admin.ListSessions(admin_pb2.ListSessionsRequest()).sessions
        ),
        10,
    )
    holder.kill()
    holder.wait()
    freed = until(lambda: admin.ListSessions(admin_pb2.ListSessionsRequest()).in_use == 0, 30)
    daemon.kill()
    row(
        "dead workstation: SIGKILL -> seat free",
        freed,
        "s",
        "reattach grace",
        freed / grace,
        "<= grace + 1 s",
        freed <= grace + 1,
    )


# Each attack figure runs this many times (a fresh daemon each time); the row gives the median
# ratio and its spread: the machine is shared, so one run says little.
ATTACK_RUNS = int(os.environ.get("SEATD_BENCH_ATTACK_RUNS", "3"))

# One run of an attack figure: the probe's latencies idle, then under attack, and a note.
Run = tuple[list[float], list[float], str]
# Waits until an attack is under way; says what it holds.
Ready = Callable[[subprocess.Popen[bytes]], str]


def attack_row(name: str, one_run: Callable[[int], Run]) -> None:
    """Run `one_run` ATTACK_RUNS times; each run's ratio of probe p99 under attack to idle
    (both measured in that run), and a row with the median ratio and its range."""
    ratios: list[float] = []
    idles: list[float] = []
    attacked_p99: list[float] = []
    note = ""
    for n in range(ATTACK_RUNS):
        idle, attacked, note = one_run(n)
        base, p99 = pct(idle, 0.99), pct(attacked, 0.99)
        ratios.append(p99 / base)
        idles.append(base)
        attacked_p99.append(p99)
        print(
            f"  {name}, run {n + 1}: idle p99 {base * 1000:.1f} ms, attacked p99 "
            f"{p99 * 1000:.1f} ms, {p99 / base:.2f}x; {note}",
            flush=True,
        )
    ratio = statistics.median(ratios)
    row(
        f"{name}: probe p99",
        statistics.median(attacked_p99) * 1000,
        "ms",
        f"median of {len(ratios)} runs, ratio {min(ratios):.2f}-{max(ratios):.2f}; idle p99 "
        f"{statistics.median(idles) * 1000:.1f} ms; last run: {note}",
        ratio,
        "<= 2 x idle",
        ratio <= 2,
    )


def _under_attack(
    daemon: Daemon,
    attack: list[str],
    seconds: float,
    *,
    release: bool,
    ready: Ready,
) -> Run:
    """Probe idle, start the attacker (`python -m tests.bench.attacks ATTACK...`), wait for
    `ready` (which says what the attack holds), probe again."""
    try:
        idle = attacks.probe(daemon.target, release=release)
        rss_before = daemon.rss_kib()
        mode, *args = attack
        attacker = subprocess.Popen(
            [PY, "-m", "tests.bench.attacks", mode, daemon.target, *args, str(seconds)],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        held = ready(attacker)
        cpu = daemon.cpu_seconds(), time.monotonic()
        attacked = attacks.probe(daemon.target, release=release)
        busy = (daemon.cpu_seconds() - cpu[0]) / (time.monotonic() - cpu[1])
        rss_during = daemon.rss_kib()
        answers = attacker.communicate(timeout=seconds + 120)[0].decode().strip()
    finally:
        daemon.kill()
    return (
        idle,
        attacked,
        f"{held}daemon CPU {busy:.0%}; RSS +{(rss_during - rss_before) / 1024:.0f} MiB; {answers}",
    )


def queue_flood(work: Path) -> None:
    """Probe at capacity while one host keeps the wait queue as full as it may (100 callers,
    queue.max_waiting_per_peer), then with FLOODERS callers asking again every ~5 s."""
    for callers in (100, attacks.FLOODERS):
        attack_row(
            f"queue full, {callers} callers asking to wait",
            lambda n, callers=callers: _queue_full(work / f"qflood-{callers}-{n}", callers),
        )


def _queue_full(state: Path, callers: int) -> Run:
    daemon = Daemon(state, "--dev-seats", "1")
    daemon.start()
    with grpc.insecure_channel(daemon.target) as ch:
        seat_pb2_grpc.SeatServiceStub(ch).Acquire(
            seat_pb2.AcquireRequest(user_code="HOLDER", idempotency_key="holder")
        )
    admin = daemon.admin()

    def full(_: subprocess.Popen[bytes]) -> str:
        until(lambda: admin.ListSessions(admin_pb2.ListSessionsRequest()).waiting >= 100, 60)
        # The first burst's refusals are answered; measure while the queue stays full.
        time.sleep(3)
        return ""

    return _under_attack(
        daemon,
        ["queue-flood", str(callers)],
        25 + attacks.PROBES * 0.02,
        release=False,
        ready=full,
    )


def admin_reads(work: Path) -> None:
    """Probe acquire+release while an administrator verifies a big journal again and again."""
    state = work / "reads"
    attacks.fill_journal(state, attacks.JOURNAL_ENTRIES)
    attack_row(
        f"journal verify of {attacks.JOURNAL_ENTRIES} entries in a loop",
        lambda _: _verifying(state),
    )


def _verifying(state: Path) -> Run:
    daemon = Daemon(state, "--dev-seats", "10")
    daemon.start()
    stop = threading.Event()
    verified: list[float] = []

    def verify() -> None:
        admin = daemon.admin()
        while not stop.is_set():
            t = time.monotonic()
            admin.VerifyJournal(admin_pb2.VerifyJournalRequest(), timeout=120)
            verified.append(time.monotonic() - t)

    try:
        idle = attacks.probe(daemon.target, release=True)
        verifier = threading.Thread(target=verify)
        verifier.start()
        cpu = daemon.cpu_seconds(), time.monotonic()
        attacked = attacks.probe(daemon.target, release=True)
        busy = (daemon.cpu_seconds() - cpu[0]) / (time.monotonic() - cpu[1])
        stop.set()
        verifier.join(180)
    finally:
        daemon.kill()
    mean = sum(verified) / len(verified) if verified else float("nan")
    return idle, attacked, f"{len(verified)} verifies, {mean:.2f} s each; daemon CPU {busy:.0%}"


def _settle(_: subprocess.Popen[bytes]) -> str:
    time.sleep(3)
    return ""


def _flood(state: Path, seats: int, attack: list[str], ready: Ready) -> Run:
    """One run of a flood figure: a fresh daemon with `seats`, probed with acquire+release."""
    daemon = Daemon(state, "--dev-seats", str(seats))
    daemon.start()
    return _under_attack(daemon, attack, 5 + attacks.PROBES * 0.03, release=True, ready=ready)


def ping_flood(work: Path) -> None:
    """Probe acquire+release while PING_STREAMS sessions flood keepalive pings."""
    attack_row(
        f"ping flood, {attacks.PING_STREAMS} streams",
        lambda n: _flood(
            work / f"pflood-{n}",
            attacks.PING_STREAMS + 10,
            ["ping-flood", str(attacks.PING_STREAMS)],
            _settle,
        ),
    )


def connection_flood(work: Path) -> None:
    """Probe acquire+release while CONNECTIONS idle connections sit on the workstation port."""

    def opened(holder: subprocess.Popen[bytes]) -> str:
        assert holder.stdout is not None
        return f"{json.loads(holder.stdout.readline())['opened']} held open; "

    attack_row(
        f"{attacks.CONNECTIONS} idle connections",
        lambda n: _flood(work / f"cflood-{n}", 10, ["connect", str(attacks.CONNECTIONS)], opened),
    )


def failover(work: Path) -> None:
    """Cluster mode: SIGKILL the leader under held seats (tests/bench/failover.py)."""
    cluster_failover.failover(work, row, ask, ROOT, cpu_seconds)


def main() -> None:
    out = ROOT / "var" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seatd-bench-") as tmp:
        work = Path(tmp)
        print(f"{'figure':<58} {'value':>12} {'unit':<8} {'ratio':>7}  {'target':<28}")
        floor = fsync_floor(work)
        row("baseline: fsync floor of the state filesystem", floor, "fsync/s", "-", None, "", None)
        commits = lmdb_commits(work)
        row(
            "baseline: bare LMDB durable commit",
            commits,
            "commit/s",
            "fsync floor",
            commits / floor,
            "",
            None,
        )
        figures = (
            throughput,
            policy_cost,
            open_loop,
            eviction,
            dead_workstation,
            queue_flood,
            admin_reads,
            ping_flood,
            connection_flood,
            workstations,
            multiplexed,
            scale,
            failover,
        )
        chosen = set(sys.argv[1:])
        for figure in (*figures, peer, etcd_store):
            if chosen and figure.__name__ not in chosen:
                continue
            try:
                figure(work)
            except Exception as exc:  # a figure that fails is reported, the rest still run
                row(
                    f"{figure.__name__}: FAILED {exc!r}"[:58],
                    float("nan"),
                    "",
                    "-",
                    None,
                    "",
                    False,
                )
    out.write_text(json.dumps(rows, indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
