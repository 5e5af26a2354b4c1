"""What the blocking and asyncio clients share: settings, and how callbacks reach the
application."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from seatclient.clock import Clock, SystemClock
from seatclient.errors import DaemonUnavailable
from seatclient.events import SeatEvent
from seatclient.lease import Backoff
from seatclient.targets import Targets

log = logging.getLogger("seatclient")

Listener = Callable[[SeatEvent], None]
QueueListener = Callable[[int], None]
UnreachableListener = Callable[[DaemonUnavailable], None]
# Runs a callable on the application's own thread (Tk's `root.after(0, fn)`, Qt's
# `QTimer.singleShot(0, fn)`, `loop.call_soon_threadsafe`): schedules it, returns at once.
Dispatch = Callable[[Callable[[], None]], Any]


class ClientSettings:
    def __init__(
        self,
        target: str | Sequence[str],
        *,
        client_version: str = "",
        hostname: str | None = None,
        timeout: float = 10.0,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
        dispatch: Dispatch | None = None,
    ) -> None:
        # One seat server, or the instances of a cluster (the library finds the leader).
        self.targets = Targets(target)
        self.client_version = client_version
        self.hostname = hostname
        self.timeout = timeout
        self.clock: Clock = clock or SystemClock()
        self.backoff = backoff or Backoff()
        self.dispatch = dispatch
        # Waits use WaitForSeat (the position streamed as it changes) unless the daemon is
        # older and does not know it: then Acquire with `wait` (the position it joined at).
        self.streamed_waits = True

    @property
    def target(self) -> str:
        """The seat server calls go to now."""
        return self.targets.current

    def deliver(self, listener: Callable[..., None], *args: Any) -> None:
        """Call `listener(*args)` through the dispatcher (at once without one). An exception
        from the listener is logged and swallowed: it must not stop the seat's keepalive."""

        def call() -> None:
            try:
                listener(*args)
            except Exception:
                log.exception("seatclient: listener %r failed", listener)

        if self.dispatch is None:
            call()
        else:
            self.dispatch(call)
