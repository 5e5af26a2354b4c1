"""Load generator worker: runs in its own process, reports latencies as JSON on stdout.
Closed loops print "go" first, when warm.

python -m tests.bench.load echo|echo3|acquire|etcd TARGET CONCURRENCY SECONDS
python -m tests.bench.load hold|hold-echo TARGET SESSIONS CONNECTIONS INTERVAL
python -m tests.bench.load open-echo|open-acquire TARGET RATE SECONDS
python -m tests.bench.load connect TARGET CONNECTIONS
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc
from seatclient.v1 import seat_pb2, seat_pb2_grpc

DEADLINE = 10.0
RAMP = 50  # acquires (and attaches) in flight per process, as workstations.py


Pair = Callable[[int], Awaitable[None]]


def echo_pair(ch: grpc.aio.Channel, calls: int = 3) -> Pair:
    """The baseline: `calls` bare echo calls (3 = as many round trips as etcd's pair)."""
    call = ch.unary_unary("/bench.Echo/Echo")

    async def pair(n: int) -> None:
        for _ in range(calls):
            await call(b"x" * 64, timeout=DEADLINE)

    return pair


def seatd_pair(ch: grpc.aio.Channel) -> Pair:
    """A durable seat taken and given back: Acquire + Release."""
    stub = seat_pb2_grpc.SeatServiceStub(ch)

    async def pair(n: int) -> None:
        r = await stub.Acquire(
            seat_pb2.AcquireRequest(user_code=f"B{n}", idempotency_key=secrets.token_hex(8)),
            timeout=DEADLINE,
        )
        await stub.Release(
            seat_pb2.ReleaseRequest(session_id=r.session_id, lease_token=r.lease_token),
            timeout=DEADLINE,
        )

    return pair


def etcd_pair(ch: grpc.aio.Channel) -> Pair:
    """A seat the way one would arbitrate it with etcd's lease API: LeaseGrant, then a
    put-if-absent Txn bound to the lease (the claim); LeaseRevoke gives it back."""
    lease, kv = rpc_pb2_grpc.LeaseStub(ch), rpc_pb2_grpc.KVStub(ch)

    async def pair(n: int) -> None:
        key = f"/seats/B{n}".encode()
        granted = await lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=30), timeout=DEADLINE)
        absent = rpc_pb2.Compare(
            key=key,
            target=rpc_pb2.Compare.CREATE,
            result=rpc_pb2.Compare.EQUAL,
            create_revision=0,
        )
        put = rpc_pb2.RequestOp(
            request_put=rpc_pb2.PutRequest(key=key, value=b"seat", lease=granted.ID)
        )
        claim = await kv.Txn(rpc_pb2.TxnRequest(compare=[absent], success=[put]), timeout=DEADLINE)
        if not claim.succeeded:
            raise RuntimeError(f"etcd: {key!r} is already held")
        await lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=granted.ID), timeout=DEADLINE)

    return pair


PAIRS: dict[str, Callable[[grpc.aio.Channel], Pair]] = {
    "echo": lambda ch: echo_pair(ch, calls=1),
    "echo3": echo_pair,
    "acquire": seatd_pair,
    "etcd": etcd_pair,
}


async def closed_loop(mode: str, target: str, concurrency: int, seconds: float) -> list[float]:
    """`concurrency` clients on one channel, each doing its pair again as soon as the last one
    is answered; each pair's latency is recorded. One warm-up pair first (connection made,
    caches filled), then "go" on stdout so the caller starts its clock (server CPU) there."""
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(target) as ch:
        pair = PAIRS[mode](ch)
        await pair(-1)
        print("go", flush=True)
        end = time.monotonic() + seconds

        async def worker(n: int) -> None:
            while time.monotonic() < end:
                t = time.monotonic()
                await pair(n)
                latencies.append(time.monotonic() - t)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return latencies


class Held:
    """One session held by `hold`: its keepalive stream and what the daemon answered on it."""

    def __init__(self, session_id: int) -> None:
        self.session_id = session_id
        self.lost = False
        self.pongs = 0
        self.last_pong = time.monotonic()


async def hold(
    target: str, sessions: int, connections: int, interval: float, echo: bool = False
) -> None:
    """Many sessions, each with its own keepalive stream pinging every `interval`, multiplexed
    over `connections` connections (each channel its own subchannel pool, so its own TCP
    connection). Prints {"held", "failed", "ids"} once every stream is attached, then answers
    "check" on stdin with {"lost", "pongs", "round_trips", "active"} until "stop" or EOF. A
    lost stream is a false expiration, since every one kept pinging; active: answered within
    1.5 intervals.
    With `echo`, the same streams on the bare echo server's `Stream` (the baseline)."""
    loop = asyncio.get_running_loop()
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(connections)
    ]
    gate = asyncio.Semaphore(RAMP)
    attached = asyncio.Event()
    pending = sessions
    held: list[Held] = []
    round_trips: list[float] = []  # ping to pong, since the last check

    def settled() -> None:
        nonlocal pending
        pending -= 1
        if pending == 0:
            attached.set()

    async def attach(i: int) -> tuple[Any, int] | None:
        """A keepalive stream attached to a new session: (the call, the session id)."""
        ch = channels[i % connections]
        if echo:
            call = ch.stream_stream("/bench.Echo/Stream")()
            await call.write(b"attach")
            return (call, i) if await call.read() == b"attach" else None
        stub = seat_pb2_grpc.SeatServiceStub(ch)
        r = await stub.Acquire(
            seat_pb2.AcquireRequest(user_code=f"H{i}", idempotency_key=secrets.token_hex(8)),
            timeout=120,
        )
        call = stub.Keepalive()
        await call.write(
            seat_pb2.KeepaliveRequest(
                attach=seat_pb2.Attach(session_id=r.session_id, lease_token=r.lease_token)
            )
        )
        first = await call.read()
        if first is grpc.aio.EOF or first.attached.session_id != r.session_id:
            return None
        return call, r.session_id

    def ping(seq: int) -> Any:
        return b"ping" if echo else seat_pb2.KeepaliveRequest(ping=seat_pb2.Ping(seq=seq))

    def pong(answer: Any) -> bool:
        if echo:
            return bool(answer == b"ping")
        return answer is not grpc.aio.EOF and answer.WhichOneof("event") == "pong"

    async def one(i: int) -> None:
        try:
            async with gate:
                attached_call = await attach(i)
        except grpc.RpcError:
            attached_call = None
        if attached_call is None:
            settled()
            return
        call, session_id = attached_call
        me = Held(session_id)
        held.append(me)
        settled()
        # Pings spread evenly over the interval, then one per interval, as the client
        # library sends them.
        await asyncio.sleep(interval * ((i * 0.618034) % 1.0))
        seq = 0
        try:
            while True:
                seq += 1
                sent = time.monotonic()
                await call.write(ping(seq))
                if not pong(await call.read()):
                    me.lost = True
                    return
                me.last_pong = time.monotonic()
                round_trips.append(me.last_pong - sent)
                me.pongs += 1
                await asyncio.sleep(interval)
        except grpc.RpcError:
            me.lost = True
        finally:
            call.cancel()

    tasks = [asyncio.create_task(one(i)) for i in range(sessions)]
    await attached.wait()
    report({"held": len(held), "failed": sessions - len(held), "ids": [h.session_id for h in held]})
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line != "check":
            break
        now = time.monotonic()
        report(
            {
                "lost": sum(h.lost for h in held),
                "pongs": sum(h.pongs for h in held),
                "round_trips": round_trips,
                "active": sum(not h.lost and now - h.last_pong <= 1.5 * interval for h in held),
            }
        )
        round_trips.clear()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for ch in channels:
        await ch.close()
    report({"stopped": len(held)})


def report(payload: object) -> None:
    print(json.dumps(payload), flush=True)


async def open_loop(mode: str, target: str, rate: float, seconds: float) -> list[float]:
    """Calls sent on a fixed schedule whatever the answers (open loop); each latency is counted
    from the moment its call was due, so a stall is not hidden by calls never sent."""
    async with grpc.aio.insecure_channel(target) as ch:
        stub = seat_pb2_grpc.SeatServiceStub(ch)
        echo_call = ch.unary_unary("/bench.Echo/Echo")
        latencies: list[float] = []

        async def one(n: int, due: float) -> None:
            if mode == "open-echo":
                await echo_call(b"x" * 64, timeout=DEADLINE)
            else:
                await stub.Acquire(
                    seat_pb2.AcquireRequest(
                        user_code=f"O{n}", idempotency_key=secrets.token_hex(8)
                    ),
                    timeout=DEADLINE,
                )
            latencies.append(time.monotonic() - due)

        # Connected and warm before the first call is due: that first call is not measured.
        if mode == "open-echo":
            await echo_call(b"x", timeout=DEADLINE)
        else:
            await stub.GetLicence(seat_pb2.GetLicenceRequest(), timeout=DEADLINE)
        start = time.monotonic() + 0.2
        calls = []
        for n in range(int(rate * seconds)):
            due = start + n / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            calls.append(asyncio.ensure_future(one(n, due)))
        await asyncio.gather(*calls)
    return latencies


async def connect(target: str, connections: int) -> None:
    """Idle connections, one call each, held until stdin closes (the baseline for RSS)."""
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(connections)
    ]
    for ch in channels:
        await ch.unary_unary("/bench.Echo/Echo")(b"x", timeout=DEADLINE)
    print(json.dumps({"connected": connections}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for ch in channels:
        await ch.close()


def main() -> None:
    mode, target = sys.argv[1], sys.argv[2]
    if mode == "connect":
        asyncio.run(connect(target, int(sys.argv[3])))
        return
    if mode.startswith("open-"):
        rate, seconds = float(sys.argv[3]), float(sys.argv[4])
        print(json.dumps(asyncio.run(open_loop(mode, target, rate, seconds))))
        return
    if mode in ("hold", "hold-echo"):
        sessions, conns, interval = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
        asyncio.run(hold(target, sessions, conns, interval, echo=mode == "hold-echo"))
        return
    concurrency, seconds = int(sys.argv[3]), float(sys.argv[4])
    print(json.dumps(asyncio.run(closed_loop(mode, target, concurrency, seconds))))


if __name__ == "__main__":
    main()
