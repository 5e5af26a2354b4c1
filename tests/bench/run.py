"""`make bench`: seatd's figures, each against a baseline measured in the same run.

Loops are bounded and every process is stopped at the end. Writes var/bench.json and prints
a table. Sizes are set by environment variables (SEATD_BENCH_SESSIONS, ...) so a smaller run
fits a busy machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import lmdb
from seatclient import AsyncSeatClient, SeatState
from seatclient.v1 import admin_pb2, admin_pb2_grpc, seat_pb2, seat_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
SECONDS = float(os.environ.get("SEATD_BENCH_SECONDS", "5"))
SESSIONS = int(os.environ.get("SEATD_BENCH_SESSIONS", "2000"))
RESTART_SESSIONS = int(os.environ.get("SEATD_BENCH_RESTART_SESSIONS", "500"))
HOLD_SECONDS = float(os.environ.get("SEATD_BENCH_HOLD_SECONDS", "30"))
LOADERS, PER_LOADER = 2, 8  # 16 concurrent clients

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
    print(f"{figure:<52} {value:>12.4f} {unit:<8} {r:>7}  {target:<28} {mark}", flush=True)


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


def loaders(mode: str, target: str) -> list[float]:
    procs = [
        subprocess.Popen(
            [PY, "-m", "tests.bench.load", mode, target, str(PER_LOADER), str(SECONDS)],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        for _ in range(LOADERS)
    ]
    latencies: list[float] = []
    for p in procs:
        out, _ = p.communicate(timeout=SECONDS + 120)
        latencies += json.loads(out)
    return latencies


# -- the daemon ---------------------------------------------------------------------------------


class Daemon:
    def __init__(self, state: Path, *flags: str) -> None:
        self.state, self.flags = state, list(flags)
        self.socket = Path(tempfile.mkdtemp(prefix="sb-", dir="/tmp")) / "a.sock"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        log = self.state.parent / f"{self.state.name}.log"
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
                cwd=ROOT,
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
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def admin(self) -> admin_pb2_grpc.AdminServiceStub:
        return admin_pb2_grpc.AdminServiceStub(grpc.insecure_channel(f"unix:{self.socket}"))

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)


def until(predicate: Callable[[], bool], timeout: float) -> float:
    t = time.monotonic()
    while not predicate():
        if time.monotonic() - t > timeout:
            return float("inf")
        time.sleep(0.005)
    return time.monotonic() - t


# -- figures -------------------------------------------------------------------------------------


def throughput(work: Path) -> None:
    echo = subprocess.Popen(
        [PY, "-m", "tests.bench.echo_server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    assert echo.stdout is not None
    port = int(echo.stdout.readline())
    base = loaders("echo", f"127.0.0.1:{port}")
    echo.communicate("", timeout=30)
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


def keepalive_scale(work: Path) -> None:
    daemon = Daemon(
        work / "scale", "--lease-ttl", "6", "--keepalive-interval", "2", "--reattach-grace", "3"
    )
    daemon.start()
    rss0, cpu0, t0 = daemon.rss_kib(), daemon.cpu_seconds(), time.monotonic()
    procs = [
        subprocess.Popen(
            [
                PY,
                "-m",
                "tests.bench.load",
                "hold",
                daemon.target,
                str(SESSIONS // 4),
                "25",
                str(HOLD_SECONDS),
                "2",
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        for _ in range(4)
    ]
    until(
        lambda: daemon.admin().ListSessions(admin_pb2.ListSessionsRequest()).in_use >= SESSIONS, 120
    )
    rss1 = daemon.rss_kib()
    results = [json.loads(p.communicate(timeout=HOLD_SECONDS + 300)[0]) for p in procs]
    cpu = (daemon.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    daemon.kill()
    held, lost = sum(r["held"] for r in results), sum(r["lost"] for r in results)
    per_session = (rss1 - rss0) / max(1, held)
    row(
        f"{held} sessions multiplexed, false expirations",
        lost,
        "sessions",
        "-",
        None,
        "0",
        lost == 0,
    )
    row(
        "daemon RSS growth per session",
        per_session,
        "KiB",
        "-",
        None,
        "<= 64 KiB",
        per_session <= 64,
    )
    row("daemon CPU while holding them", cpu * 100, "% core", "-", None, "<= 40 %", cpu <= 0.4)


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
    daemon = Daemon(work / "evict")
    daemon.start()
    latencies = asyncio.run(_eviction(daemon, 100))
    daemon.kill()
    p99 = pct(latencies, 0.99)
    row(
        "eviction: Evict returned -> client event, p99",
        p99 * 1000,
        "ms",
        "-",
        None,
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


async def _restart(daemon: Daemon, n: int) -> tuple[float, float, bool]:
    client = AsyncSeatClient(daemon.target, timeout=30)
    seats = []
    for batch in range(0, n, 100):
        seats += await asyncio.gather(
            *(client.acquire(user_code=f"R{i}") for i in range(batch, min(n, batch + 100)))
        )
    ids = {s.session_id for s in seats}
    await asyncio.to_thread(daemon.kill, signal.SIGKILL)
    serving = await asyncio.to_thread(daemon.start)
    t = time.monotonic()
    while not all(s.state is SeatState.ACTIVE for s in seats) and time.monotonic() - t < 60:  # noqa: ASYNC110 (polls many seats)
        await asyncio.sleep(0.05)
    back = time.monotonic() - t
    listed = await asyncio.to_thread(
        lambda: daemon.admin().ListSessions(admin_pb2.ListSessionsRequest())
    )
    same = {s.id for s in listed.sessions} == ids and listed.in_use == n
    for s in seats:
        await s.release()
    await client.close()
    return serving, back, same


def restart(work: Path) -> None:
    daemon = Daemon(work / "restart", "--dev-seats", str(RESTART_SESSIONS))
    daemon.start()
    serving, back, same = asyncio.run(_restart(daemon, RESTART_SESSIONS))
    daemon.kill()
    row(
        f"restart with {RESTART_SESSIONS} sessions: serving again",
        serving,
        "s",
        "-",
        None,
        "<= 2 s",
        serving <= 2,
    )
    row(
        "restart: every client ACTIVE on its own session",
        back,
        "s",
        "interval + backoff",
        back / (10 + 5),
        "<= 15 s, no seat lost",
        back <= 15 and same,
    )


def main() -> None:
    out = ROOT / "var" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seatd-bench-") as tmp:
        work = Path(tmp)
        print(f"{'figure':<52} {'value':>12} {'unit':<8} {'ratio':>7}  {'target':<28}")
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
        figures = (throughput, eviction, dead_workstation, restart, keepalive_scale)
        chosen = set(sys.argv[1:])
        for figure in figures:
            if chosen and figure.__name__ not in chosen:
                continue
            try:
                figure(work)
            except Exception as exc:  # a figure that fails is reported, the rest still run
                row(
                    f"{figure.__name__}: FAILED {exc!r}"[:52],
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
