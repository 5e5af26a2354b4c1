"""Group commit: one writer thread, one transaction for every decision waiting at that moment.

Callers decide on the event loop, `submit` the events and await the returned future; it
resolves once the transaction holding them has committed. While one transaction runs on the
writer thread, new submissions gather and go into the next one, so the event loop never
waits on an fsync and throughput grows with load.

When a commit fails, every decision not yet committed (that batch, and those that gathered
behind it, which were decided on top of it) fails with `StorageFailed`, and `on_failure`
runs so the owner can rebuild its in-memory state from the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from seatd.errors import StorageFailed
from seatd.model import Event
from seatd.store import Store

_Pending = tuple[Sequence[Event], "asyncio.Future[None]"]


class Committer:
    def __init__(
        self,
        store: Store,
        on_failure: Callable[[], None],
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._on_failure = on_failure
        self._on_commit = on_commit
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seatd-writer")
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, events: Sequence[Event]) -> asyncio.Future[None]:
        """Queue events; the future resolves after their commit. No events: a barrier."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((events, future))
        self._idle.clear()
        self._wake.set()
        return future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            events = [e for evs, _ in batch for e in evs]
            try:
                if events:
                    await loop.run_in_executor(self._writer, self._store.commit, events)
                    self._on_commit()
            except Exception as exc:
                error = exc if isinstance(exc, StorageFailed) else StorageFailed(repr(exc))
                failed, self._pending = batch + self._pending, []
                for _, future in failed:
                    if not future.done():
                        future.set_exception(error)
                self._on_failure()
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
            if not self._pending:
                self._idle.set()

    async def drain(self) -> None:
        """Wait until everything submitted so far has committed (or failed)."""
        await self._idle.wait()

    def close(self) -> None:
        self._writer.shutdown(wait=True)
