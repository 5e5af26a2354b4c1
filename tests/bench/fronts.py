"""A prototype of workstation-facing fronts (issue 16, "Use more than one core"): measured here,
not shipped. It answers one question: on this machine, does moving gRPC termination out of the
process that owns the arbiter win enough to be worth building?

    python -m tests.bench.fronts                       the measurement (prints a table)
    python -m tests.bench.fronts core SOCKET STATE_DIR the core: the real SeatService on LMDB
    python -m tests.bench.fronts front SOCKET PORT     one front (PORT 0: pick one, print it)

The core runs seatd's own service (arbiter, group commit on LMDB, durable before the answer)
and no gRPC: it reads batches of decoded requests from each front over a unix socket, runs each
as a task, and writes the answers back in batches, one write per loop turn. A front terminates
gRPC (Acquire and Release only), validates the request with seatd's own rules, forwards it, and
builds the answer from the core's reply plus what every answer repeats (the licence summary and
the lease terms, sent once by the core when the front connects). Fronts share the port with
SO_REUSEPORT; the kernel spreads connections (not calls) over them. The wire between front and
core is a 4-byte length and a `marshal`led list of tuples: the cheapest encoding Python has, so
the prototype measures the best case of a batched local protocol.

Left out on purpose (see the design in the README, "Design: workstation-facing fronts"):
keepalive streams and pings, evictions routed to fronts, the admin socket, the lock.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import marshal
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import uvloop
from google.protobuf.duration_pb2 import Duration
from seatclient.v1 import seat_pb2, seat_pb2_grpc, types_pb2

from seatd.arbiter import Arbiter
from seatd.clock import SystemClock
from seatd.config import Config
from seatd.daemon import entitlement_of, licence_book
from seatd.errors import InvalidArgument, SeatdError
from seatd.log import configure
from seatd.service import AcquireRequest, SeatService
from seatd.store import open_store
from seatd.store.lmdb import StoreConfig
from seatd.transport import convert, validate
from seatd.transport.seat import peer_ip
from tests.bench.load import PAIRS
from tests.bench.run import Daemon, cpu_seconds, median, pct

HEADER = struct.Struct(">I")
Batch = list[tuple[Any, ...]]


async def read_batch(reader: asyncio.StreamReader) -> Batch:
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    batch: Batch = marshal.loads(await reader.readexactly(size))
    return batch


def frame(batch: Batch) -> bytes:
    body = marshal.dumps(batch)
    return HEADER.pack(len(body)) + body


class Outbox:
    """Items gathered during one loop turn, written as one frame at its end."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.items: Batch = []

    def put(self, item: tuple[Any, ...]) -> None:
        if not self.items:
            asyncio.get_running_loop().call_soon(self._flush)
        self.items.append(item)

    def _flush(self) -> None:
        items, self.items = self.items, []
        self.writer.write(frame(items))


# -- the core ----------------------------------------------------------------------------------


async def core(socket_path: str, state_dir: Path) -> None:

    configure()  # to stderr, as the daemon logs: stdout says "ready"
    config = Config()
    clock = SystemClock()
    store = open_store(StoreConfig(state_dir=state_dir), create=True)
    snapshot = store.load()
    arbiter = Arbiter(config.lease, policy=config.policy)
    book = licence_book(snapshot, config, {}, clock)
    service = SeatService(
        arbiter=arbiter,
        store=store,
        clock=clock,
        entitlement=entitlement_of(config, book),
        book=book,
    )
    arbiter.restore(snapshot.sessions, snapshot.next_id, service.now(), snapshot.endings)
    terms = config.lease
    running: set[asyncio.Task[None]] = set()

    async def one(out: Outbox, request: tuple[Any, ...]) -> None:
        rid, op = request[0], request[1]
        try:
            if op == "a":
                _, _, user_code, user_name, hostname, version, key, ip = request
                acquired = await service.acquire(
                    AcquireRequest(
                        user_code=user_code,
                        user_name=user_name,
                        hostname=hostname,
                        client_version=version,
                        idempotency_key=key,
                        ip=ip,
                        evict_session_id=0,
                        evict_reason="",
                        wait=0.0,
                    )
                )
                s = acquired.session
                out.put((rid, 0, s.id, s.token, s.started_at.timestamp()))
            else:
                out.put((rid, 0, await service.release(request[2], request[3])))
        except SeatdError as refused:
            out.put((rid, 1, type(refused).__name__, str(refused)))

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        out = Outbox(writer)
        summary = convert.licence(service.entitlement.view()).SerializeToString()
        out.put((summary, terms.ttl, terms.keepalive_interval, terms.reattach_grace))
        try:
            while True:
                for request in await read_batch(reader):
                    task = asyncio.create_task(one(out, request))
                    running.add(task)
                    task.add_done_callback(running.discard)
        except asyncio.IncompleteReadError:
            writer.close()

    server = await asyncio.start_unix_server(serve, socket_path)
    print("ready", flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        server.close()
        await service.committer.drain()
        service.committer.close()
        store.close()


# -- a front -----------------------------------------------------------------------------------


def _duration(seconds: float) -> Duration:
    return Duration(seconds=int(seconds), nanos=round((seconds % 1) * 1e9))


Context = grpc.aio.ServicerContext[Any, Any]


async def _checked(request: Any, context: Context) -> None:
    """seatd's own request rules, in the front."""
    try:
        validate.check(request)
    except InvalidArgument as bad:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(bad))


async def _answered(call: Awaitable[tuple[Any, ...]], context: Context) -> tuple[Any, ...]:
    """The core's reply; a refusal ends the call (one status for all: a prototype)."""
    reply = await call
    if reply[1]:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"{reply[2]}: {reply[3]}")
    return reply


class Front(seat_pb2_grpc.SeatServiceServicer):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.out = reader, Outbox(writer)
        self.waiting: dict[int, asyncio.Future[tuple[Any, ...]]] = {}
        self.ids = itertools.count(1)
        self.summary = types_pb2.LicenceSummary()
        self.terms: dict[str, Duration] = {}

    async def hello(self) -> None:
        ((summary, ttl, interval, grace),) = await read_batch(self.reader)
        self.summary.ParseFromString(summary)
        self.terms = {
            "ttl": _duration(ttl),
            "keepalive_interval": _duration(interval),
            "reattach_grace": _duration(grace),
        }

    async def replies(self) -> None:
        while True:
            for reply in await read_batch(self.reader):
                self.waiting.pop(reply[0]).set_result(reply)

    async def _call(self, *request: Any) -> tuple[Any, ...]:
        rid = next(self.ids)
        answer = asyncio.get_running_loop().create_future()
        self.waiting[rid] = answer
        self.out.put((rid, *request))
        reply: tuple[Any, ...] = await answer
        return reply

    async def Acquire(
        self, request: seat_pb2.AcquireRequest, context: Context
    ) -> seat_pb2.AcquireResponse:

        await _checked(request, context)
        ip = peer_ip(context.peer())
        reply = await _answered(
            self._call(
                "a",
                request.user_code,
                request.user_name,
                request.hostname,
                request.client_version,
                request.idempotency_key,
                ip,
            ),
            context,
        )
        _, _, session_id, token, started = reply
        at = convert.timestamp(datetime.fromtimestamp(started, UTC))
        return seat_pb2.AcquireResponse(
            session_id=session_id,
            lease_token=token,
            licence=self.summary,
            session=types_pb2.Session(
                id=session_id,
                user_code=request.user_code.strip(),
                user_name=request.user_name.strip(),
                hostname=request.hostname.strip(),
                ip=ip,
                client_version=request.client_version.strip(),
                started_at=at,
                last_seen_at=at,
                duration=Duration(),
            ),
            waited=Duration(),
            **self.terms,
        )

    async def Release(
        self, request: seat_pb2.ReleaseRequest, context: Context
    ) -> seat_pb2.ReleaseResponse:

        await _checked(request, context)
        reply = await _answered(self._call("r", request.session_id, request.lease_token), context)
        return seat_pb2.ReleaseResponse(released=reply[2])


async def front(socket_path: str, port: int) -> None:
    reader, writer = await asyncio.open_unix_connection(socket_path)
    servicer = Front(reader, writer)
    await servicer.hello()
    replies = asyncio.create_task(servicer.replies())
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
    seat_pb2_grpc.add_SeatServiceServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(bound, flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        replies.cancel()
        await server.stop(None)


# -- the measurement ---------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
CHANNELS = int(os.environ.get("SEATD_BENCH_FRONT_CHANNELS", "4"))
REPEATS = int(os.environ.get("SEATD_BENCH_FRONT_REPEATS", "2"))
SECONDS = float(os.environ.get("SEATD_BENCH_FRONT_SECONDS", "5"))
CLIENTS = (16, 64)


async def pairs(target: str, clients: int, seconds: float, channels: int) -> list[float]:
    """The peer's closed loop (tests.bench.load), over `channels` connections: the kernel
    spreads connections, not calls, over the fronts."""

    # Own subchannels: otherwise grpc shares one connection between the channels.
    opts = [("grpc.use_local_subchannel_pool", 1)]
    chans = [grpc.aio.insecure_channel(target, options=opts) for _ in range(channels)]
    loops: list[Callable[[int], Awaitable[None]]] = [PAIRS["acquire"](ch) for ch in chans]
    for pair in loops:
        await pair(-1)
    print("go", flush=True)
    latencies: list[float] = []
    end = time.monotonic() + seconds

    async def worker(n: int) -> None:
        pair = loops[n % channels]
        while time.monotonic() < end:
            t = time.monotonic()
            await pair(n)
            latencies.append(time.monotonic() - t)

    await asyncio.gather(*(worker(i) for i in range(clients)))
    for ch in chans:
        await ch.close()
    return latencies


def cpu_of(pids: list[int]) -> list[float]:

    return [cpu_seconds(pid) for pid in pids]


def run_load(target: str, clients: int, pids: list[int]) -> tuple[list[float], list[float]]:
    """The closed loop's pair latencies, and each server process's CPU seconds meanwhile."""
    p = subprocess.Popen(
        [PY, "-m", "tests.bench.fronts", "load", target, str(clients), str(SECONDS)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    try:
        assert p.stdout is not None
        if p.stdout.readline().strip() != "go":
            raise RuntimeError("the load did not start")
        cpu0 = cpu_of(pids)
        out, _ = p.communicate(timeout=SECONDS + 120)
        return json.loads(out), [b - a for a, b in zip(cpu0, cpu_of(pids), strict=True)]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


class Fronted:
    """The core and `n` fronts on one port."""

    def __init__(self, state: Path, n: int) -> None:
        self.socket = str(state / "core.sock")
        self.core = subprocess.Popen(
            [PY, "-m", "tests.bench.fronts", "core", self.socket, str(state / "core")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        assert self.core.stdout is not None
        if self.core.stdout.readline().strip() != "ready":
            raise RuntimeError("the core did not start")
        self.fronts: list[subprocess.Popen[str]] = []
        port = 0
        for _ in range(n):
            f = subprocess.Popen(
                [PY, "-m", "tests.bench.fronts", "front", self.socket, str(port)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=ROOT,
                text=True,
            )
            assert f.stdout is not None
            port = int(f.stdout.readline())
            self.fronts.append(f)
        self.target = f"127.0.0.1:{port}"

    @property
    def pids(self) -> list[int]:
        return [self.core.pid, *(f.pid for f in self.fronts)]

    def stop(self) -> None:
        for p in [*self.fronts, self.core]:
            p.communicate("", timeout=30)


def measure() -> None:

    (ROOT / "var").mkdir(exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="fronts-", dir=ROOT / "var"))
    daemon = Daemon(state / "seatd")
    setups: dict[str, Fronted] = {}
    rates: dict[tuple[str, int], list[float]] = {}
    cpus: dict[tuple[str, int], list[float]] = {}
    # The core's share of that CPU (the process that owns the arbiter and the store).
    core_cpus: dict[tuple[str, int], list[float]] = {}
    lats: dict[tuple[str, int], list[float]] = {}
    try:
        daemon.start()
        assert daemon.proc is not None
        for n in (1, 2):
            (state / f"f{n}").mkdir()
            setups[f"core + {n} front{'s' if n > 1 else ''}"] = Fronted(state / f"f{n}", n)
        where = {"seatd (one process)": (daemon.target, [daemon.proc.pid])}
        where.update({name: (s.target, s.pids) for name, s in setups.items()})
        for _ in range(REPEATS):
            for clients in CLIENTS:
                for name, (target, pids) in where.items():
                    lat, cpu = run_load(target, clients, pids)
                    key = (name, clients)
                    rates.setdefault(key, []).append(len(lat) / SECONDS)
                    cpus.setdefault(key, []).append(sum(cpu) / max(1, len(lat)))
                    core_cpus.setdefault(key, []).append(cpu[0] / max(1, len(lat)))
                    lats.setdefault(key, []).extend(lat)
    finally:
        daemon.kill()
        for s in setups.values():
            s.stop()
        shutil.rmtree(state, ignore_errors=True)
    print(
        f"\nfronts: {REPEATS} x {SECONDS:.0f} s each, {CHANNELS} connections, medians; "
        "server CPU per pair summed over the server's processes"
    )
    names = list(where)
    print(f"| clients | {' | '.join(names)} |")
    print(f"|---|{'---|' * len(names)}")
    for clients in CLIENTS:
        base = median(rates[(names[0], clients)])
        cells = [
            f"{median(rates[(n, clients)]):,.0f} pairs/s"
            f" ({median(rates[(n, clients)]) / base:.2f}x),"
            f" p99 {pct(lats[(n, clients)], 0.99) * 1000:.0f} ms,"
            f" CPU {median(cpus[(n, clients)]) * 1000:.2f} ms"
            f" (core {median(core_cpus[(n, clients)]) * 1000:.2f} ms)"
            for n in names
        ]
        print(f"| {clients} | {' | '.join(cells)} |")


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "measure"
    if what == "core":
        uvloop.run(core(sys.argv[2], Path(sys.argv[3])))
    elif what == "front":
        uvloop.run(front(sys.argv[2], int(sys.argv[3])))
    elif what == "load":
        target, clients, seconds = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
        print(json.dumps(asyncio.run(pairs(target, clients, seconds, CHANNELS))))
    else:
        measure()


if __name__ == "__main__":
    main()
