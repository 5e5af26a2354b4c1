"""Load generator: workstations, each a real `AsyncSeatClient` on its own connection.

python -m tests.bench.workstations TARGET COUNT NAME

It takes COUNT seats, then answers the bench's commands on stdin with one JSON line each:

  (at start)        -> {"held": n, "failed": n, "ids": [...]}
  hold              -> {"lost": n, "jeopardy": n}       false expirations since the seats were held
  storm KILLED UP   -> {"back": [s, ...], "not_back": n, "lost": n}
                       the daemon was SIGKILLed at monotonic KILLED and served again at UP:
                       waits (at most 60 s) until every seat is ACTIVE again after KILLED;
                       "back" is when each one was, in seconds after UP
  release           -> {"released": n}                   and exits

Every wait is bounded; end of input also ends it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from seatclient import AsyncSeatClient, SeatState
from seatclient.aio import AsyncSeat
from seatclient.events import SeatEvent, StateChanged

RAMP = 50  # acquires in flight per process


class Workstation:
    def __init__(self, target: str, user_code: str) -> None:
        self.client = AsyncSeatClient(target, timeout=60)
        self.user_code = user_code
        self.seat: AsyncSeat | None = None
        self.lost = self.jeopardy = 0
        self.active_since = 0.0

    def on_event(self, event: SeatEvent) -> None:
        if not isinstance(event, StateChanged):
            return
        if event.new is SeatState.JEOPARDY:
            self.jeopardy += 1
        elif event.new is SeatState.ACTIVE:
            self.active_since = time.monotonic()
        elif event.new in (SeatState.LOST, SeatState.EVICTED):
            self.lost += 1

    async def take(self, gate: asyncio.Semaphore) -> bool:
        async with gate:
            try:
                self.seat = await self.client.acquire(
                    user_code=self.user_code, on_event=self.on_event
                )
            except Exception:
                return False
            self.active_since = time.monotonic()
            return True

    def back_after(self, killed: float) -> bool:
        seat = self.seat
        return seat is not None and seat.state is SeatState.ACTIVE and self.active_since > killed


def answer(payload: object) -> None:
    print(json.dumps(payload), flush=True)


async def main(target: str, count: int, name: str) -> None:
    loop = asyncio.get_running_loop()
    stations = [Workstation(target, f"{name}-{i}") for i in range(count)]
    gate = asyncio.Semaphore(RAMP)
    taken = await asyncio.gather(*(w.take(gate) for w in stations))
    held = [w for w, ok in zip(stations, taken, strict=True) if ok]
    answer(
        {
            "held": len(held),
            "failed": count - len(held),
            "ids": [w.seat.session_id for w in held if w.seat],
        }
    )
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        if not line or line[0] == "release":
            break
        if line[0] == "hold":
            answer({"lost": sum(w.lost for w in held), "jeopardy": sum(w.jeopardy for w in held)})
        elif line[0] == "storm":
            killed, up = float(line[1]), float(line[2])
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(w.back_after(killed) for w in held):  # noqa: ASYNC110 (polls thousands of seats)
                await asyncio.sleep(0.05)
            back = [w.active_since - up for w in held if w.back_after(killed)]
            answer(
                {"back": back, "not_back": len(held) - len(back), "lost": sum(w.lost for w in held)}
            )
    await asyncio.gather(*(w.client.close() for w in stations), return_exceptions=True)
    answer({"released": len(held)})


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
