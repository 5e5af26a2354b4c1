"""Refusals held back, so that a caller who asks again as soon as it is answered asks rarely.

A refusal answered at once lets a closed-loop client (a broken library, a script, a flood)
ask again at its round-trip rate, whatever retry hint the refusal carries, and every call
costs the daemon grpc's per-call work (about 0.6 ms of CPU here, most of it below our code)
whether it is granted or not. So an acquire that asked to wait for a seat, refused because
the wait queue is full (QUEUE_FULL) or because its address is over its refusal budget
(RATE_LIMITED), is answered when the wait it asked for runs out, as if it had queued and no
seat had come. The caller waits no longer than it said it would, and nothing is done for it
meanwhile: a held call costs a timer and grpc's memory for an open call (about 27 KiB,
measured). At most `max_held` calls are held at once; beyond, refusals are answered at once.
Draining answers every held call at once.

Only unary calls are held. A stream held open lets its client fill the stream's flow-control
window with messages that grpc's own threads read meanwhile (measured on a ping flood: more
CPU than answering each reattach at once), so a penalised reattach is refused at once.
"""

from __future__ import annotations

import asyncio


def _wake(held: asyncio.Future[bool], to_the_end: bool) -> None:
    if not held.done():
        held.set_result(to_the_end)


class Tarpit:
    def __init__(self, max_held: int) -> None:
        self.max_held = max_held
        self._held: set[asyncio.Future[bool]] = set()

    def __len__(self) -> int:
        return len(self._held)

    async def hold(self, seconds: float) -> bool:
        """Wait `seconds` before a refusal is sent. False at once when `max_held` calls are
        already held (or `seconds` is not positive), and False when released early by
        `release_all`; True when held to the end."""
        if seconds <= 0 or len(self._held) >= self.max_held:
            return False
        loop = asyncio.get_running_loop()
        held: asyncio.Future[bool] = loop.create_future()
        timer = loop.call_later(seconds, _wake, held, True)
        self._held.add(held)
        try:
            return await held
        finally:
            # Also when the caller cancels (its deadline, or it hung up): nothing is left behind.
            timer.cancel()
            self._held.discard(held)

    def release_all(self) -> None:
        """Answer every held call now (the daemon is draining)."""
        for held in list(self._held):
            _wake(held, False)
