"""Wires the components into a running daemon and runs it until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from seatd import __version__
from seatd.arbiter import Arbiter
from seatd.clock import Clock, OffsetClock
from seatd.cloudsync import CloudSync
from seatd.config import Config
from seatd.entitlement import DevSeats, Entitlement
from seatd.errors import StateError
from seatd.licence.book import LicenceBook
from seatd.licence.signing import TrustedKey, load_trusted_key
from seatd.licence.watch import LicenceWatch
from seatd.model import DaemonEvent
from seatd.notify import Notifier, Watchdog, watchdog_interval
from seatd.reaper import Reaper
from seatd.retention import Retention
from seatd.server import build, secure_socket
from seatd.service import SeatService
from seatd.store import Store

log = structlog.get_logger("seatd")

STOP_GRACE = 2.0


def entitlement_of(config: Config, book: LicenceBook) -> Entitlement:
    if config.dev.seats:
        log.warning(
            "daemon.dev_seats",
            seats=config.dev.seats,
            note="development cap from --dev-seats; the licence is not enforced",
        )
        return DevSeats(config.dev.seats)
    return book


def trusted_keys(paths: tuple[Path, ...]) -> dict[str, TrustedKey]:
    keys: dict[str, TrustedKey] = {}
    for path in paths:
        try:
            key = load_trusted_key(path)
        except (OSError, ValueError) as exc:
            raise StateError(f"cannot read trusted vendor key {path}: {exc}") from exc
        keys[key.kid] = key
    return keys


async def run(config: Config, clock: Clock) -> None:
    """Serve until a stop signal. Raises StateError when the daemon cannot start."""
    if config.dev.wall_clock_offset:
        log.warning(
            "daemon.wall_clock_offset",
            seconds=config.dev.wall_clock_offset,
            note="test setting: the wall clock is shifted",
        )
        clock = OffsetClock(clock, config.dev.wall_clock_offset)
    keys = trusted_keys(config.licence.trusted_keys)
    store = Store(config.store)
    try:
        await _serve(config, clock, store, keys)
    finally:
        store.close()


async def _serve(config: Config, clock: Clock, store: Store, keys: dict[str, TrustedKey]) -> None:
    snapshot = store.load()
    arbiter = Arbiter(config.lease)
    book = LicenceBook(
        base_id=snapshot.base_id,
        config=config.licence,
        trusted=keys,
        clock=clock,
        text=snapshot.licence_text,
        active=snapshot.active_seats,
        last_seen=snapshot.last_seen,
    )
    service = SeatService(
        arbiter=arbiter,
        store=store,
        clock=clock,
        entitlement=entitlement_of(config, book),
        takeover=config.policy.takeover,
        book=book,
    )
    arbiter.restore(snapshot.sessions, snapshot.next_id, service.now())
    if snapshot.sessions:
        log.info(
            "daemon.restored",
            sessions=len(snapshot.sessions),
            restart_grace=config.lease.restart_grace,
        )
    watch = LicenceWatch(service, book, config.licence.check_interval)
    cloud = CloudSync(service, config.cloud, snapshot.base_id, snapshot.installation_secret)
    servers = build(config.server, service, cloud, config.admin)
    tasks = [
        asyncio.create_task(service.committer.run(), name="committer"),
        asyncio.create_task(Reaper(service, config.reaper).run(), name="reaper"),
        asyncio.create_task(watch.run(), name="licence-watch"),
        asyncio.create_task(Retention(service, config.journal).run(), name="retention"),
    ]
    if config.cloud.url:
        tasks.append(asyncio.create_task(cloud.run(), name="cloud-sync"))
    notifier = Notifier()

    def status() -> str:
        cap = service.entitlement.seat_cap()
        return f"{arbiter.in_use} of {cap if cap is not None else 'unlimited'} seats in use"

    health_channel = grpc.aio.insecure_channel(f"unix:{config.server.admin_socket}")

    async def self_check() -> str:
        store.ping()
        answer = await health_pb2_grpc.HealthStub(health_channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            raise RuntimeError(f"admin server health is {answer.status}")
        return status()

    interval = watchdog_interval()
    if notifier.enabled:
        watchdog = Watchdog(notifier, self_check, interval or 10.0, pet=interval is not None)
        tasks.append(asyncio.create_task(watchdog.run(), name="watchdog"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await watch.tick()
        await service.committer.submit(
            (
                DaemonEvent(
                    "daemon_started",
                    clock.wall(),
                    f"seatd {__version__}; {len(snapshot.sessions)} sessions restored",
                ),
            )
        )
        await servers.start()
        secure_socket(config.server)
        host = config.server.listen.rpartition(":")[0]
        cap = service.entitlement.seat_cap()
        log.info(
            "daemon.ready",
            listen=f"{host}:{servers.port}",
            admin_socket=str(config.server.admin_socket),
            admin_listen=f"{config.admin.listen.rpartition(':')[0]}:{servers.remote_port}"
            if servers.remote
            else "",
            tls=bool(config.server.tls_cert),
            state_dir=str(config.store.state_dir),
            base_id=snapshot.base_id,
            licence=book.view().status.name.lower(),
            seat_cap=cap if cap is not None else "unlimited",
            in_use=arbiter.in_use,
        )
        notifier.ready(status())
        await stop.wait()
        log.info("daemon.stopping", in_use=arbiter.in_use)
        notifier.stopping(f"draining: {status()}")
        await service.drain()
        await service.committer.submit(
            (
                DaemonEvent(
                    "daemon_stopped", clock.wall(), f"{arbiter.in_use} sessions kept for reattach"
                ),
            )
        )
        await watch.tick()
        await servers.stop(STOP_GRACE)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await cloud.close()
        await health_channel.close()
        service.committer.close()
    log.info("daemon.stopped")
