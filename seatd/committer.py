"""Group commit: one writer thread, one transaction for every decision waiting at that moment.

Callers decide on the event loop, `submit` the events and await the returned future; it
resolves once the transaction holding them has committed. The writer thread takes everything
queued, commits it in one transaction, and goes straight back for what gathered meanwhile: the
event loop never waits on an fsync, the writer never waits on the event loop, and throughput
grows with load.

When a commit fails, every decision not yet committed (that batch, and those queued behind it,
which were decided on top of it) fails with `StorageFailed`, and `on_failure` runs on the loop
so the owner can rebuild its in-memory state from the store. Decisions submitted after that
are committed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import queue
import threading
from collections.abc import Callable, Sequence

import structlog

from seatd.errors import StorageFailed
from seatd.metrics import STORE_COMMIT_SECONDS
from seatd.model import Event
from seatd.store import Store

log = structlog.get_logger()

_Pending = tuple[Sequence[Event], "asyncio.Future[None]"]


class _Marker(enum.Enum):
    RESYNCED = "the owner has reloaded its state: commit again"
    STOP = "stop the writer"


def _size(item: _Pending | _Marker) -> int:
    return 0 if isinstance(item, _Marker) else len(item[0])


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
        self._queue: queue.SimpleQueue[_Pending | _Marker] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        # Loop side: submissions not yet settled, and whether a failure awaits its resync.
        self._unsettled = 0
        self._needs_resync = False
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, events: Sequence[Event]) -> asyncio.Future[None]:
        """Queue events; the future resolves after their commit. No events: a barrier."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._writer is None:
            self._writer = threading.Thread(target=self._write, name="seatd-writer", daemon=True)
            self._writer.start()
        self._unsettled += 1
        self._idle.clear()
        self._queue.put((events, future))
        return future

    async def drain(self) -> None:
        """Wait until everything submitted so far has committed (or failed)."""
        await self._idle.wait()

    def close(self) -> None:
        """Stop the writer once what is queued is done."""
        if self._writer is not None:
            self._queue.put(_Marker.STOP)
            self._writer.join()
            self._writer = None

    # -- the writer thread ---------------------------------------------------------------------

    def _write(self) -> None:
        failing: StorageFailed | None = None
        while True:
            items = [self._queue.get()]
            size = _size(items[0])
            while size < self._store.max_batch_events:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
                size += _size(items[-1])
            batch: list[_Pending] = []
            for item in items:
                if not isinstance(item, _Marker):
                    batch.append(item)
                    continue
                failing = self._commit(batch, failing)
                batch = []
                if item is _Marker.STOP:
                    return
                failing = None
            failing = self._commit(batch, failing)

    def _commit(self, batch: list[_Pending], failing: StorageFailed | None) -> StorageFailed | None:
        """Commit `batch` unless an earlier failure is not yet resynced; settle it on the loop."""
        if not batch:
            return failing
        first_failure = False
        if failing is None:
            events = [e for evs, _ in batch for e in evs]
            try:
                if events:
                    with STORE_COMMIT_SECONDS.time():
                        self._store.commit(events)
            except Exception as exc:
                failing = exc if isinstance(exc, StorageFailed) else StorageFailed(repr(exc))
                first_failure = True
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            batch[0][1].get_loop().call_soon_threadsafe(self._settle, batch, failing, first_failure)
        return failing

    # -- back on the event loop ----------------------------------------------------------------

    def _settle(
        self, batch: list[_Pending], error: StorageFailed | None, first_failure: bool
    ) -> None:
        for _, future in batch:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
        if error is None and any(events for events, _ in batch):
            self._on_commit()
        self._needs_resync = self._needs_resync or first_failure
        if error is not None and self._needs_resync:
            try:
                self._on_failure()
            except Exception:  # still failing: the next refused decision tries again
                log.exception("store.resync_failed")
            else:
                self._needs_resync = False
                self._queue.put(_Marker.RESYNCED)
        self._unsettled -= len(batch)
        if not self._unsettled:
            self._idle.set()
