"""Wires the components into a running daemon and runs it until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog

from seatd.arbiter import Arbiter
from seatd.clock import Clock
from seatd.config import Config
from seatd.entitlement import DevSeats, Entitlement, FreeStandard
from seatd.reaper import Reaper
from seatd.server import build, secure_socket
from seatd.service import SeatService
from seatd.store import Store

log = structlog.get_logger("seatd")

STOP_GRACE = 2.0


def entitlement_of(config: Config) -> Entitlement:
    if config.dev.seats:
        log.warning(
            "daemon.dev_seats",
            seats=config.dev.seats,
            note="development cap from --dev-seats; not a licence",
        )
        return DevSeats(config.dev.seats)
    return FreeStandard()


async def run(config: Config, clock: Clock) -> None:
    """Serve until a stop signal. Raises StateError when the daemon cannot start."""
    store = Store(config.store)
    try:
        await _serve(config, clock, store)
    finally:
        store.close()


async def _serve(config: Config, clock: Clock, store: Store) -> None:
    snapshot = store.load()
    arbiter = Arbiter(config.lease)
    service = SeatService(
        arbiter=arbiter,
        store=store,
        clock=clock,
        entitlement=entitlement_of(config),
        takeover=config.policy.takeover,
    )
    arbiter.restore(snapshot.sessions, snapshot.next_id, service.now())
    if snapshot.sessions:
        log.info(
            "daemon.restored",
            sessions=len(snapshot.sessions),
            restart_grace=config.lease.restart_grace,
        )
    servers = build(config.server, service)
    tasks = [
        asyncio.create_task(service.committer.run(), name="committer"),
        asyncio.create_task(Reaper(service, config.reaper).run(), name="reaper"),
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await servers.start()
        secure_socket(config.server)
        host = config.server.listen.rpartition(":")[0]
        log.info(
            "daemon.ready",
            listen=f"{host}:{servers.port}",
            admin_socket=str(config.server.admin_socket),
            state_dir=str(config.store.state_dir),
            seat_cap=cap if (cap := service.entitlement.seat_cap()) is not None else "unlimited",
            in_use=arbiter.in_use,
        )
        await stop.wait()
        log.info("daemon.stopping", in_use=arbiter.in_use)
        await service.drain()
        await servers.stop(STOP_GRACE)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        service.committer.close()
    log.info("daemon.stopped")
