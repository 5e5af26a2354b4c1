"""Probe latency while a LAN host attacks the daemon, as a ratio to the same probe idle.

Figures for `make bench` (selectable by name: `python -m tests.bench.run queue_flood`):
- queue_flood: FLOODERS callers from one host keep asking to wait for a seat (far more than
  the queue takes from one address); the probe is an acquire at capacity, refused
  (SEATS_EXHAUSTED), from another connection.
- admin_reads: `VerifyJournal` in a loop over a journal of JOURNAL_ENTRIES entries; the
  probe is an acquire + release.

The attacker runs in its own process: `python -m tests.bench.attacks queue-flood TARGET
CONCURRENCY SECONDS`.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
from google.protobuf import duration_pb2
from seatclient.v1 import admin_pb2, seat_pb2, seat_pb2_grpc

PROBES = int(os.environ.get("SEATD_BENCH_PROBES", "300"))
FLOODERS = int(os.environ.get("SEATD_BENCH_FLOODERS", "2000"))
JOURNAL_ENTRIES = int(os.environ.get("SEATD_BENCH_JOURNAL_ENTRIES", "200000"))
DEADLINE = 30.0


async def _probe(target: str, n: int, release: bool) -> list[float]:
    """`n` acquires one after another, 10 ms apart; each one's latency."""
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(target) as ch:
        stub = seat_pb2_grpc.SeatServiceStub(ch)
        await stub.GetLicence(seat_pb2.GetLicenceRequest(), timeout=DEADLINE)
        for i in range(n):
            t = time.monotonic()
            try:
                r = await stub.Acquire(
                    seat_pb2.AcquireRequest(user_code="PROBE", idempotency_key=f"p{i}"),
                    timeout=DEADLINE,
                )
                if release:
                    await stub.Release(
                        seat_pb2.ReleaseRequest(session_id=r.session_id, lease_token=r.lease_token),
                        timeout=DEADLINE,
                    )
            except grpc.aio.AioRpcError as exc:
                if exc.code() is not grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
            latencies.append(time.monotonic() - t)
            await asyncio.sleep(0.01)
    return latencies


def probe(target: str, release: bool) -> list[float]:
    return asyncio.run(_probe(target, PROBES, release))


async def flood_queue(target: str, concurrency: int, seconds: float) -> dict[str, int]:
    """`concurrency` callers each keep asking to wait 20 s for a seat; a refused one asks again
    a second later."""
    answers: dict[str, int] = {}
    end = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(target) as ch:
        stub = seat_pb2_grpc.SeatServiceStub(ch)

        async def one(n: int) -> None:
            while time.monotonic() < end:
                try:
                    await stub.Acquire(
                        seat_pb2.AcquireRequest(
                            user_code=f"F{n}",
                            idempotency_key=secrets.token_hex(8),
                            wait=duration_pb2.Duration(seconds=20),
                        ),
                        timeout=DEADLINE,
                    )
                    code = "OK"
                except grpc.aio.AioRpcError as exc:
                    code = exc.code().name
                    if exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                        await asyncio.sleep(1.0)
                answers[code] = answers.get(code, 0) + 1

        await asyncio.gather(*(one(i) for i in range(concurrency)))
    return answers


def fill_journal(state: Path, entries: int) -> None:
    """Write `entries` journal entries straight into a fresh store (refusals: the cheapest)."""
    from seatd.model import Holder, Refused
    from seatd.store import Store, StoreConfig

    store = Store(StoreConfig(state))
    holder = Holder.checked(
        user_code="J", user_name="journal", hostname="PC", ip="10.0.0.1", client_version="1"
    )
    at = datetime.now(UTC)
    for start in range(0, entries, 5000):
        batch = min(5000, entries - start)
        store.commit([Refused(holder, "bench", 1, 1, at) for _ in range(batch)])
    store.close()


def main() -> None:
    mode, target = sys.argv[1], sys.argv[2]
    if mode == "queue-flood":
        concurrency, seconds = int(sys.argv[3]), float(sys.argv[4])
        print(json.dumps(asyncio.run(flood_queue(target, concurrency, seconds))))


if __name__ == "__main__":
    main()


# -- figures, called by tests.bench.run ---------------------------------------------------------


def ratio_row(name: str, idle: list[float], attacked: list[float], note: str) -> None:
    from tests.bench.run import pct, row

    base, p99 = pct(idle, 0.99), pct(attacked, 0.99)
    row(
        f"{name}: probe p99",
        p99 * 1000,
        "ms",
        f"idle p99 {base * 1000:.1f} ms; {note}",
        p99 / base,
        "<= 2 x idle",
        p99 <= 2 * base,
    )


def queue_flood(work: Path) -> None:
    from tests.bench.run import ROOT, Daemon

    daemon = Daemon(work / "qflood", "--dev-seats", "1")
    daemon.start()
    try:
        with grpc.insecure_channel(daemon.target) as ch:
            seat_pb2_grpc.SeatServiceStub(ch).Acquire(
                seat_pb2.AcquireRequest(user_code="HOLDER", idempotency_key="holder")
            )
        idle = probe(daemon.target, release=False)
        rss_before = daemon.rss_kib()
        seconds = 5 + PROBES * 0.02
        flooder = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.bench.attacks",
                "queue-flood",
                daemon.target,
                str(FLOODERS),
                str(seconds),
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        admin = daemon.admin()
        deadline = time.monotonic() + 30
        # Full as far as one address may fill it (queue.max_waiting_per_peer).
        while admin.ListSessions(admin_pb2.ListSessionsRequest()).waiting < 100:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        attacked = probe(daemon.target, release=False)
        rss_during = daemon.rss_kib()
        answers = json.loads(flooder.communicate(timeout=seconds + 120)[0])
    finally:
        daemon.kill()
    ratio_row(
        f"queue flood ({FLOODERS} callers)",
        idle,
        attacked,
        f"RSS +{(rss_during - rss_before) / 1024:.0f} MiB; {answers}",
    )


def admin_reads(work: Path) -> None:
    from tests.bench.run import Daemon

    state = work / "reads"
    fill_journal(state, JOURNAL_ENTRIES)
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
        idle = probe(daemon.target, release=True)
        verifier = threading.Thread(target=verify)
        verifier.start()
        attacked = probe(daemon.target, release=True)
        stop.set()
        verifier.join(180)
    finally:
        daemon.kill()
    mean = sum(verified) / len(verified) if verified else float("nan")
    ratio_row(
        f"journal verify of {JOURNAL_ENTRIES} entries in a loop",
        idle,
        attacked,
        f"{len(verified)} verifies, {mean:.2f} s each",
    )
