"""Issue 12 §1's attacks as figures: a probe's acquire p99 during each attack, as a ratio to
the same probe on the same daemon just before it (target: at most 2x).

The daemon runs at capacity (fillers hold every seat but the probe's); the probe is a chain
of takeovers, each evicting its own previous session, so every probe is a durable grant at
capacity. Each attack runs in its own process (`python -m tests.chaos.attacks flood KIND
TARGET SECONDS ...`), prints `ready` once set up and stops at its time or when its stdin
closes. Sizes come from the environment (CHAOS_QUEUE_FLOOD, ...) so a busy machine can run
a smaller one. Every process is stopped at the end, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import select
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
from seatclient.v1 import admin_pb2, admin_pb2_grpc, seat_pb2, seat_pb2_grpc

from tests.bench.run import ROOT, pct, row
from tests.e2e.conftest import FAST, Daemon
from tests.tables import filled

CAP = 4
PROBE_SECONDS = float(os.environ.get("CHAOS_PROBE_SECONDS", "4"))
QUEUE_FLOOD = int(os.environ.get("CHAOS_QUEUE_FLOOD", "3000"))
PING_STREAMS = int(os.environ.get("CHAOS_PING_STREAMS", "2"))
CONNECTIONS = int(os.environ.get("CHAOS_CONNECTIONS", "900"))
JOURNAL = int(os.environ.get("CHAOS_JOURNAL_ENTRIES", "200000"))
ATTACK_SECONDS = 120.0  # the longest an attack process lives, whatever the parent does
# Leases long enough that no filler or probe session expires during a figure.
LONG = ["--lease-ttl", "120", "--reattach-grace", "120", "--dev-seats", str(CAP)]


def request(user: str, evict: int = 0, wait: float | None = None) -> seat_pb2.AcquireRequest:
    r = seat_pb2.AcquireRequest(
        user_code=user, idempotency_key=secrets.token_hex(8), evict_session_id=evict
    )
    if wait is not None:
        r.wait.FromTimedelta(timedelta(seconds=wait))
    return r


# -- the attacks (each in its own process) -----------------------------------------------------


async def queue_flood(target: str, seconds: float, n: int) -> dict[str, Any]:
    """`n` acquires waiting at capacity, each re-sent when answered, over 10 connections."""
    channels = [grpc.aio.insecure_channel(target) for _ in range(10)]
    answers: dict[str, int] = {}
    end = time.monotonic() + seconds

    async def waiter(i: int) -> None:
        stub = seat_pb2_grpc.SeatServiceStub(channels[i % len(channels)])
        while time.monotonic() < end:
            try:
                await stub.Acquire(request(f"Q{i}", wait=20), timeout=25)
                code = "OK"
            except grpc.RpcError as exc:
                code = exc.code().name
            answers[code] = answers.get(code, 0) + 1
            if code != "DEADLINE_EXCEEDED":
                await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(waiter(i)) for i in range(n)]
    await asyncio.sleep(1.0)  # the queue fills
    print("ready", flush=True)
    await until_told(end)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for ch in channels:
        await ch.close()
    return answers


async def ping_flood(target: str, seconds: float, victims: list[int]) -> dict[str, Any]:
    """Seats taken over from fillers, each with a keepalive stream written as fast as it goes
    and never read; plus HTTP/2 PINGs as often as grpc will send them."""
    options = [
        ("grpc.keepalive_time_ms", 10),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_time_between_pings_ms", 10),
    ]
    channel = grpc.aio.insecure_channel(target, options=options)
    stub = seat_pb2_grpc.SeatServiceStub(channel)
    sent = 0
    end = time.monotonic() + seconds

    async def stream(victim: int) -> None:
        nonlocal sent
        r = await stub.Acquire(request("P", evict=victim), timeout=10)
        call: Any = stub.Keepalive()
        attach = seat_pb2.Attach(session_id=r.session_id, lease_token=r.lease_token)
        await call.write(seat_pb2.KeepaliveRequest(attach=attach))
        seq = 0
        try:
            while time.monotonic() < end and seq < 5_000_000:
                seq += 1
                await call.write(seat_pb2.KeepaliveRequest(ping=seat_pb2.Ping(seq=seq)))
                sent += 1
        except (grpc.RpcError, asyncio.InvalidStateError):
            pass
        finally:
            call.cancel()

    tasks = [asyncio.create_task(stream(v)) for v in victims]
    await asyncio.sleep(0.5)
    print("ready", flush=True)
    await until_told(end)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await channel.close()
    return {"pings_sent": sent}


async def connection_flood(target: str, seconds: float, n: int) -> dict[str, Any]:
    """`n` TCP connections that never send a byte, and a churn of connects and closes."""
    host, port = target.rsplit(":", 1)
    held: list[socket.socket] = []
    for _ in range(n):
        try:
            held.append(socket.create_connection((host, int(port)), 2))
        except OSError:
            break
    print("ready", flush=True)
    end = time.monotonic() + seconds
    churned = 0
    while time.monotonic() < end and not stdin_closed():
        try:
            socket.create_connection((host, int(port)), 2).close()
            churned += 1
        except OSError:
            pass
        await asyncio.sleep(0.002)
    for s in held:
        s.close()
    return {"held": len(held), "churned": churned}


async def admin_reads(socket_path: str, seconds: float) -> dict[str, Any]:
    """Two admins running `journal verify` back to back on the large journal."""
    channel = grpc.aio.insecure_channel(f"unix:{socket_path}")
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    done = 0
    end = time.monotonic() + seconds

    async def reader() -> None:
        nonlocal done
        while time.monotonic() < end:
            await admin.VerifyJournal(admin_pb2.VerifyJournalRequest(), timeout=60)
            done += 1

    tasks = [asyncio.create_task(reader()) for _ in range(2)]
    await asyncio.sleep(0.2)
    print("ready", flush=True)
    await until_told(end)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await channel.close()
    return {"verifies": done}


def stdin_closed() -> bool:
    readable, _, _ = select.select([sys.stdin], [], [], 0)
    return bool(readable) and not sys.stdin.readline()


async def until_told(end: float) -> None:
    """Until the parent closes our stdin, or `end` (bounded either way)."""
    closed = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), closed.set)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closed.wait(), max(0.0, end - time.monotonic()))
    finally:
        loop.remove_reader(sys.stdin.fileno())


# -- the probe and the figures -----------------------------------------------------------------


async def probe(target: str, previous: int, seconds: float) -> tuple[list[float], int]:
    """Takeovers of our own previous seat for `seconds`; latencies and the last session."""
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(target) as ch:
        stub = seat_pb2_grpc.SeatServiceStub(ch)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.monotonic()
            try:
                r = await stub.Acquire(request("PROBE", evict=previous), timeout=30)
                previous = r.session_id
            except grpc.RpcError as exc:
                print(f"  probe refused: {exc.code().name} {exc.details()}", flush=True)
            latencies.append(time.monotonic() - t)
            await asyncio.sleep(0.005)
    return latencies, previous


def fill(target: str) -> list[int]:
    """Every seat taken: CAP - 1 fillers, then the probe's first seat (last in the list)."""
    with grpc.insecure_channel(target) as ch:
        stub = seat_pb2_grpc.SeatServiceStub(ch)
        return [stub.Acquire(request(f"F{i}"), timeout=10).session_id for i in range(CAP)]


def figure(work: Path, name: str, kind: str, *extra: str, journal: int = 0) -> None:
    d = Daemon(work / f"{kind}-state", work / f"{kind}.sock", work / kind, [*FAST, *LONG])
    if journal:
        filled(d.state_dir, journal)
    attack: subprocess.Popen[str] | None = None
    try:
        d.start()
        seats = fill(d.target)
        idle, last = asyncio.run(probe(d.target, seats[-1], PROBE_SECONDS))
        args = [d.target if kind != "admin" else str(d.socket), *extra]
        if kind == "ping":
            args += [str(s) for s in seats[: min(PING_STREAMS, CAP - 1)]]
        attack = subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.attacks", "flood", kind, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert attack.stdout is not None
        ready = attack.stdout.readline().strip()
        if ready != "ready":
            raise RuntimeError(f"{kind}: the attack did not start ({ready!r})")
        under, _ = asyncio.run(probe(d.target, last, PROBE_SECONDS))
        out, _ = attack.communicate("", timeout=60)  # closing its stdin stops it
        base, p99 = pct(idle, 0.99), pct(under, 0.99)
        rss = rss_mib(d)
        row(f"probe acquire p99, idle ({name})", base * 1000, "ms", "-", None, "", None)
        ratio = p99 / base
        row(
            f"probe acquire p99 under {name}",
            p99 * 1000,
            "ms",
            "idle p99",
            ratio,
            "<= 2x",
            ratio <= 2,
        )
        print(f"    {kind}: {out.strip()}; daemon RSS after {rss:.0f} MiB", flush=True)
    finally:
        if attack is not None and attack.poll() is None:
            attack.kill()
            attack.wait(10)
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)


def rss_mib(d: Daemon) -> float:
    assert d.proc is not None
    for line in Path(f"/proc/{d.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def figures(work: Path) -> None:
    print(f"\n{'figure':<58} {'value':>12} {'unit':<8} {'ratio':>7}  {'target':<28}")
    figure(work, f"a queue flood ({QUEUE_FLOOD} waiters)", "queue", str(QUEUE_FLOOD))
    figure(work, f"a ping flood ({PING_STREAMS} streams)", "ping")
    figure(work, f"a connection flood ({CONNECTIONS} idle)", "conn", str(CONNECTIONS))
    figure(work, f"journal verify x2 ({JOURNAL} entries)", "admin", journal=JOURNAL)


def flood(kind: str, target: str, *rest: str) -> None:
    seconds = ATTACK_SECONDS
    if kind == "queue":
        result = asyncio.run(queue_flood(target, seconds, int(rest[0])))
    elif kind == "ping":
        result = asyncio.run(ping_flood(target, seconds, [int(v) for v in rest]))
    elif kind == "conn":
        result = asyncio.run(connection_flood(target, seconds, int(rest[0])))
    else:
        result = asyncio.run(admin_reads(target, seconds))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["flood"]:
        flood(*sys.argv[2:])
    else:
        with tempfile.TemporaryDirectory(prefix="chaos-attacks-", dir="/tmp") as tmp:
            figures(Path(tmp))
