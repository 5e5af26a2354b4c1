"""Probe latency while a LAN host attacks the daemon, as a ratio to the same probe idle.

Figures for `make bench` (selectable by name: `python -m tests.bench.run queue_flood`):
- queue_flood: FLOODERS callers from one host keep asking to wait for a seat (far more than
  the queue takes from one address); the probe is an acquire at capacity, refused
  (SEATS_EXHAUSTED), from another connection.
- admin_reads: `VerifyJournal` in a loop over a journal of JOURNAL_ENTRIES entries; the
  probe is an acquire + release.
- ping_flood: PING_STREAMS sessions each send keepalive pings as fast as they can, and
  reattach REATTACH_AFTER seconds after the daemon ends their stream; the probe is an
  acquire + release.
- connection_flood: CONNECTIONS idle TCP connections, half silent, half having sent the
  HTTP/2 preface; the probe is an acquire + release.

The figures live in tests.bench.run; the attacker runs in its own process:
`python -m tests.bench.attacks queue-flood|ping-flood|connect TARGET N SECONDS`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
from google.protobuf import duration_pb2
from seatclient.v1 import seat_pb2, seat_pb2_grpc

PROBES = int(os.environ.get("SEATD_BENCH_PROBES", "300"))
FLOODERS = int(os.environ.get("SEATD_BENCH_FLOODERS", "2000"))
JOURNAL_ENTRIES = int(os.environ.get("SEATD_BENCH_JOURNAL_ENTRIES", "200000"))
PING_STREAMS = int(os.environ.get("SEATD_BENCH_PING_STREAMS", "50"))
CONNECTIONS = int(os.environ.get("SEATD_BENCH_CONNECTIONS", "1000"))
# A flooding client reattaches this long after its stream was ended (ignoring the retry hint).
REATTACH_AFTER = float(os.environ.get("SEATD_BENCH_REATTACH_AFTER", "1.0"))
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")
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
    """`concurrency` callers each ask to wait 20 s for a seat, again when a wait runs out, and
    5 s after a refusal."""
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
                        await asyncio.sleep(random.uniform(4.0, 6.0))
                answers[code] = answers.get(code, 0) + 1

        await asyncio.gather(*(one(i) for i in range(concurrency)))
    return answers


async def flood_pings(target: str, streams: int, seconds: float) -> dict[str, int]:
    """`streams` sessions pinging without pause; each reattaches when its stream ends."""
    counts = {"pings": 0, "streams_ended": 0}
    end = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(target) as ch:
        stub = seat_pb2_grpc.SeatServiceStub(ch)

        async def one(n: int) -> None:
            r = await stub.Acquire(
                seat_pb2.AcquireRequest(user_code=f"P{n}", idempotency_key=f"ping-{n}"),
                timeout=DEADLINE,
            )
            attach = seat_pb2.Attach(session_id=r.session_id, lease_token=r.lease_token)
            while time.monotonic() < end:
                call = stub.Keepalive()
                try:
                    await call.write(seat_pb2.KeepaliveRequest(attach=attach))
                    for seq in range(1, 1000):
                        await call.write(seat_pb2.KeepaliveRequest(ping=seat_pb2.Ping(seq=seq)))
                        counts["pings"] += 1
                except (grpc.RpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
                    pass  # the daemon ended the stream: a write after that fails either way
                counts["streams_ended"] += 1
                call.cancel()
                await asyncio.sleep(REATTACH_AFTER)

        await asyncio.gather(*(one(i) for i in range(streams)))
    return counts


async def hold_connections(target: str, connections: int, seconds: float) -> dict[str, int]:
    """Open `connections` TCP connections that never make a call: half never say anything,
    half send the HTTP/2 preface and stop there."""
    host, _, port = target.rpartition(":")
    opened: list[asyncio.StreamWriter] = []
    refused = 0
    for n in range(connections):
        try:
            _, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            refused += 1
            continue
        if n % 2:
            writer.write(PREFACE)
        opened.append(writer)
    print(json.dumps({"opened": len(opened)}), flush=True)
    await asyncio.sleep(seconds)
    for writer in opened:
        writer.close()
    return {"opened": len(opened), "refused": refused}


def fill_journal(state: Path, entries: int) -> None:
    """Write `entries` journal entries straight into a fresh store (refusals: the cheapest)."""
    from seatd.model import Holder, Refused
    from seatd.store import LmdbStore, StoreConfig

    store = LmdbStore(StoreConfig(state))
    holder = Holder("J", "journal", "PC", "10.0.0.1", "1")
    at = datetime.now(UTC)
    for start in range(0, entries, 5000):
        batch = min(5000, entries - start)
        store.commit([Refused(holder, "bench", 1, 1, at) for _ in range(batch)])
    store.close()


def main() -> None:
    mode, target = sys.argv[1], sys.argv[2]
    n, seconds = int(sys.argv[3]), float(sys.argv[4])
    attack = {"queue-flood": flood_queue, "ping-flood": flood_pings, "connect": hold_connections}
    print(json.dumps(asyncio.run(attack[mode](target, n, seconds))))


if __name__ == "__main__":
    main()
