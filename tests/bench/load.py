"""Load generator worker: runs in its own process, reports latencies as JSON on stdout.
Closed loops print "go" first, when warm.

python -m tests.bench.load echo|echo3|acquire|etcd TARGET CONCURRENCY SECONDS
python -m tests.bench.load hold TARGET SESSIONS CONNECTIONS SECONDS INTERVAL
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

import grpc
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc
from seatclient.v1 import seat_pb2, seat_pb2_grpc

DEADLINE = 10.0


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


async def hold(
    target: str, sessions: int, connections: int, seconds: float, interval: float
) -> dict[str, int]:
    """Many sessions, each with its own keepalive stream, multiplexed over a few connections.
    Reports how many leases were lost (a false expiration, since every one kept pinging)."""
    channels = [grpc.aio.insecure_channel(target) for _ in range(connections)]
    lost = 0
    held = 0

    async def one(i: int) -> None:
        nonlocal lost, held
        stub = seat_pb2_grpc.SeatServiceStub(channels[i % connections])
        r = await stub.Acquire(
            seat_pb2.AcquireRequest(user_code=f"H{i}", idempotency_key=secrets.token_hex(8)),
            timeout=60,
        )
        held += 1
        call = stub.Keepalive()
        await call.write(
            seat_pb2.KeepaliveRequest(
                attach=seat_pb2.Attach(session_id=r.session_id, lease_token=r.lease_token)
            )
        )
        await call.read()
        end = time.monotonic() + seconds
        seq = 0
        try:
            while time.monotonic() < end:
                await asyncio.sleep(interval * (0.9 + 0.2 * (i % 10) / 10))
                seq += 1
                await call.write(seat_pb2.KeepaliveRequest(ping=seat_pb2.Ping(seq=seq)))
                answer = await call.read()
                if answer is grpc.aio.EOF or answer.WhichOneof("event") != "pong":
                    lost += 1
                    return
        except grpc.RpcError:
            lost += 1
        finally:
            call.cancel()

    await asyncio.gather(*(one(i) for i in range(sessions)))
    for ch in channels:
        await ch.close()
    return {"held": held, "lost": lost}


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
    if mode == "hold":
        sessions, conns, seconds, interval = (
            int(sys.argv[3]),
            int(sys.argv[4]),
            float(sys.argv[5]),
            float(sys.argv[6]),
        )
        print(json.dumps(asyncio.run(hold(target, sessions, conns, seconds, interval))))
        return
    concurrency, seconds = int(sys.argv[3]), float(sys.argv[4])
    print(json.dumps(asyncio.run(closed_loop(mode, target, concurrency, seconds))))


if __name__ == "__main__":
    main()
