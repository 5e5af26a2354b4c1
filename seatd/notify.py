"""systemd's notify protocol, spoken directly to NOTIFY_SOCKET (abstract sockets too).

READY=1 once the store is open and the servers listen; STATUS= with the seats in use;
WATCHDOG=1 only after a real self-check; STOPPING=1 when the daemon starts to drain. Without
NOTIFY_SOCKET (not under systemd) every call does nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("seatd")


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        # "@name" is an abstract socket: a leading NUL byte on the wire.
        self.address = "\0" + address[1:] if address.startswith("@") else address

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *lines: str) -> bool:
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(self.address)
                s.sendall("\n".join(lines).encode())
        except OSError as exc:
            log.warning("notify.failed", error=str(exc))
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str) -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec (from WATCHDOG_USEC), or None when there is no watchdog."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1e6 / 2


class Watchdog:
    """Pets systemd's watchdog only when `check` passes; `run` only sleeps and calls `tick`."""

    def __init__(
        self,
        notifier: Notifier,
        check: Callable[[], Awaitable[str]],
        interval: float,
        *,
        pet: bool = True,
    ) -> None:
        self.notifier = notifier
        self.check = check
        self.interval = interval
        # Without WatchdogSec the same tick still keeps STATUS= current.
        self.pet = pet

    async def tick(self) -> bool:
        try:
            status = await asyncio.wait_for(self.check(), timeout=self.interval)
        except Exception as exc:
            log.error(
                "watchdog.self_check_failed",
                error=repr(exc),
                action="not petting the watchdog: systemd will restart the daemon",
            )
            return False
        if self.pet:
            self.notifier.send("WATCHDOG=1", f"STATUS={status}")
        else:
            self.notifier.status(status)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.tick()
