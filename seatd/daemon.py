"""Wires the components into a running daemon and runs it until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from seatd import __version__, fds, metrics
from seatd import store as stores
from seatd.arbiter import Arbiter
from seatd.capacity import ADVICE
from seatd.clock import Clock, OffsetClock
from seatd.cloudsync import CloudSync
from seatd.cluster import node
from seatd.cluster.node import Term
from seatd.cluster.standby import StandbyServers
from seatd.config import Config
from seatd.entitlement import DevSeats, Entitlement
from seatd.errors import ConfigError, SeatdError, StateError, StorageFailed
from seatd.licence.book import LicenceBook
from seatd.licence.signing import TrustedKey, load_trusted_key
from seatd.licence.watch import LicenceWatch
from seatd.log import configure
from seatd.model import DaemonEvent, Restored
from seatd.notify import Notifier, Watchdog, watchdog_interval
from seatd.reaper import Reaper
from seatd.retention import Retention
from seatd.server import build, secure_socket
from seatd.service import SEATD, SeatService
from seatd.store import Fence, Snapshot, Store
from seatd.web.app import WebServer

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


# Allocations between young collections (CPython's default: 700). Every ping replaces its
# session and leaves a few objects waiting for the next one; at the default rate those survive
# into the oldest generation, and every few seconds a full collection walks every stream's
# objects to find almost nothing (measured: ~11 % of the daemon's CPU holding 3,000 sessions,
# a stall of seconds with 50,000). Young collections this far apart let them die young.
YOUNG_COLLECTION_EVERY = 50_000


def collect_in_large_batches() -> None:
    """The garbage collector tuned for a heap of many long-lived streams (see above)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)


async def run(
    config: Config, clock: Clock, reload_config: Callable[[], Config] | None = None
) -> None:
    """Serve until a stop signal; SIGHUP reloads. Raises StateError when it cannot start."""
    if config.dev.wall_clock_offset:
        log.warning(
            "daemon.wall_clock_offset",
            seconds=config.dev.wall_clock_offset,
            note="test setting: the wall clock is shifted",
        )
        clock = OffsetClock(clock, config.dev.wall_clock_offset)
    keys = trusted_keys(config.licence.trusted_keys)
    raise_descriptors(config)
    stop = stop_on_signals()
    if config.cluster.enabled:
        await node.run(
            config,
            clock,
            stop,
            lambda pinned, store, snapshot, term, standby: _serve(
                pinned, clock, store, keys, reload_config, stop, term, snapshot, standby
            ),
            cluster_store(config),
        )
        return
    store = stores.open_store(config.store)
    try:
        await _serve(config, clock, store, keys, reload_config, stop)
    finally:
        store.close()


def raise_descriptors(config: Config) -> None:
    """Raise the soft descriptor limit to the hard one, once, before any listener is built
    (a standby's included: they become the leader's at a takeover); each workstation-facing
    listener then accepts only the connections that leave the reserve free
    (`server.network_options`). Says so when that is fewer than configured."""
    soft = fds.raise_limit()
    connections = fds.connection_cap(config.server.max_connections, soft)
    if connections < config.server.max_connections:
        log.warning(
            "server.connections_capped",
            max_connections=connections,
            nofile=soft,
            action="raise LimitNOFILE in the unit to accept server.max_connections",
        )


def cluster_store(config: Config) -> Callable[[Fence], Store]:
    """Opens the site's store in etcd, fenced by this instance's leadership."""

    def open_fenced(fence: Fence) -> Store:
        return stores.open_store(config.store, config.cluster.etcd_config(), fence=fence)

    return open_fenced


def stop_on_signals() -> asyncio.Event:
    """Set on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def restored_event(snapshot: Snapshot, clock: Clock) -> tuple[Restored, ...]:
    """The `seatd restore` done while the daemon was stopped, to journal now (once)."""
    r = snapshot.restored
    if r is None:
        return ()
    log.info("daemon.restore_journaled", backup=r["backup"], restored_at=r["restored_at"])
    return (
        Restored(
            at=clock.wall(),
            by=r["by"],
            backup=r["backup"],
            sha256=r["sha256"],
            size=r["bytes"],
            restored_at=datetime.fromisoformat(r["restored_at"]),
            backup_seq=r["backup_seq"],
            backup_at=r["backup_at"],
            replaced=r["replaced"],
        ),
    )


async def install_licence_file(service: SeatService, path: str) -> None:
    """Install the licence file named in the config when its serial is not the one in force."""
    book = service.book
    if not path or book is None:
        return
    try:
        text = await asyncio.to_thread(Path(path).read_text, "ascii", "replace")
        if book.licence is not None and book.check(text).serial == book.licence.serial:
            return
        await service.import_licence(text, source="file", actor=SEATD)
    except (OSError, SeatdError) as exc:
        log.error(
            "licence.file_refused", file=path, error=str(exc), action="the licence in force stays"
        )


async def housekeeping(write: Awaitable[None], what: str) -> None:
    """A write at start or stop: a store that cannot commit is logged, never fatal, so the
    daemon still starts to serve releases and still stops cleanly."""
    try:
        await write
    except StorageFailed as exc:
        log.error("daemon.write_failed", what=what, error=exc.message, action=ADVICE)


RESTART_NEEDED = ("server", "store")


async def reload(config: Config, new: Config, service: SeatService, retention: Retention) -> None:
    """Apply a reloaded config to the running daemon; sessions are untouched."""
    service.arbiter.terms = new.lease
    service.set_policy(new.policy)
    service.set_refusal_limits(new.refusals)
    service.queue.reconfigure(new.queue)
    service.tarpit.max_held = new.queue.max_held
    if service.book is not None:
        service.book.config = new.licence
        service.book.trusted = trusted_keys(new.licence.trusted_keys)
    retention.config = new.journal
    configure(new.log)
    stale = [s for s in RESTART_NEEDED if getattr(config, s) != getattr(new, s)]
    log.info(
        "daemon.reloaded", restart_needed=",".join(stale) or "none", in_use=service.arbiter.in_use
    )
    await install_licence_file(service, new.licence.file)
    service.licence_changed()


def licence_book(
    snapshot: Snapshot, config: Config, keys: dict[str, TrustedKey], clock: Clock
) -> LicenceBook:
    """The licence state the store holds, as the daemon serves it."""
    return LicenceBook(
        base_id=snapshot.base_id,
        config=config.licence,
        trusted=keys,
        clock=clock,
        text=snapshot.licence_text,
        active=snapshot.active_seats,
        last_seen=snapshot.last_seen,
        next_text=snapshot.next_licence_text,
        transferred=snapshot.transferred,
        lineage=snapshot.lineage,
    )


async def _serve(
    config: Config,
    clock: Clock,
    store: Store,
    keys: dict[str, TrustedKey],
    reload_config: Callable[[], Config] | None,
    stop: asyncio.Event,
    term: Term | None = None,
    snapshot: Snapshot | None = None,
    standby: StandbyServers | None = None,
) -> None:
    """Serve until `stop` is set or, in a cluster, the leadership `term` ends; from
    `snapshot` when the table was loaded already, on the `standby`'s servers handed over
    (a cluster's takeover)."""
    if snapshot is None:
        snapshot = store.load()
    arbiter = Arbiter(config.lease, policy=config.policy)
    book = licence_book(snapshot, config, keys, clock)
    service = SeatService(
        arbiter=arbiter,
        store=store,
        clock=clock,
        entitlement=entitlement_of(config, book),
        takeover=config.policy.takeover,
        book=book,
        refusals=config.refusals,
        queue=config.queue,
    )
    if term is not None:
        service.leadership = term.check
    arbiter.restore(snapshot.sessions, snapshot.next_id, service.now(), snapshot.endings)
    if snapshot.sessions:
        log.info(
            "daemon.restored",
            sessions=len(snapshot.sessions),
            restart_grace=config.lease.restart_grace,
        )
    watch = LicenceWatch(service, book, config.licence.check_interval)
    retention = Retention(service, config.journal)
    cloud = CloudSync(service, config.cloud, snapshot.base_id, snapshot.installation_secret)
    servers = build(config.server, service, cloud, config.admin, standby)
    tasks = [
        asyncio.create_task(Reaper(service, config.reaper).run(), name="reaper"),
        asyncio.create_task(watch.run(), name="licence-watch"),
        asyncio.create_task(retention.run(), name="retention"),
    ]
    if config.cloud.url:
        tasks.append(asyncio.create_task(cloud.run(), name="cloud-sync"))
    notifier = Notifier()

    def status() -> str:
        cap = service.entitlement.seat_cap()
        return f"{arbiter.in_use} of {cap if cap is not None else 'unlimited'} seats in use"

    health_channel = grpc.aio.insecure_channel(f"unix:{config.server.admin_socket}")

    async def self_check() -> str:
        await service.check_store()
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
    loop = asyncio.get_running_loop()

    async def on_hup() -> None:
        nonlocal config
        if reload_config is None:
            return
        try:
            new = reload_config()
            await reload(config, new, service, retention)
        except (ConfigError, StateError) as exc:
            log.error("daemon.reload_failed", error=str(exc), action="the running config stays")
            return
        config = new

    reloads: set[asyncio.Task[None]] = set()

    def hup() -> None:
        task = asyncio.create_task(on_hup())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, hup)
    metrics_server = None
    console: WebServer | None = None
    try:
        # Every listener is bound before anything says ready: build() bound the gRPC ones.
        if config.metrics.listen:
            metrics_server = metrics.serve(config.metrics, service, cloud)
            log.info(
                "daemon.metrics",
                listen=f"{config.metrics.listen.rpartition(':')[0]}:{metrics_server.server_port}",
            )
        await housekeeping(watch.tick(), "licence_watch")
        await housekeeping(
            service.committer.submit(
                (
                    *restored_event(snapshot, clock),
                    DaemonEvent(
                        "daemon_started",
                        clock.wall(),
                        f"seatd {__version__}; {len(snapshot.sessions)} sessions restored",
                    ),
                )
            ),
            "daemon_started",
        )
        await servers.start()
        secure_socket(config.server)
        if config.web.listen:
            console = WebServer(servers.actions, config.web, clock)
            url = await console.start()
            servers.actions.console = console.links
            log.info("web.listening", url=url)
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
        await install_licence_file(service, config.licence.file)
        notifier.ready(status())
        deposed = await until_stopped(stop, term)
        if deposed:
            # No longer the leader: nothing this instance writes would commit. Workstations
            # are told to reattach (to the new leader, which a standby names).
            log.warning("daemon.deposed", reason=deposed, in_use=arbiter.in_use)
            await servers.drain()
            return
        log.info("daemon.stopping", in_use=arbiter.in_use)
        notifier.stopping(f"draining: {status()}")
        await servers.drain()
        await housekeeping(
            service.committer.submit(
                (
                    DaemonEvent(
                        "daemon_stopped",
                        clock.wall(),
                        f"{arbiter.in_use} sessions kept for reattach",
                    ),
                )
            ),
            "daemon_stopped",
        )
        await housekeeping(watch.tick(), "licence_watch")
        if console is not None:
            await console.stop()
        await servers.stop(STOP_GRACE)
    finally:
        # Also on a failed start: grpc servers must stop while the loop still runs.
        with contextlib.suppress(Exception):
            await servers.stop(0)
        if console is not None:
            with contextlib.suppress(Exception):
                await console.stop()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await cloud.close()
        await health_channel.close()
        if metrics_server is not None:
            await asyncio.to_thread(metrics_server.shutdown)
            metrics_server.server_close()
        service.committer.close()
    log.info("daemon.stopped")


async def until_stopped(stop: asyncio.Event, term: Term | None) -> str:
    """Wait for a stop signal ("" returned) or the end of the leadership term (why)."""
    stopping = asyncio.ensure_future(stop.wait())
    waits: list[asyncio.Future[Any]] = [stopping]
    if term is not None:
        waits.append(term.ended)
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if stop.is_set() or term is None or not term.ended.done() or term.ended.cancelled():
        return ""
    failed = term.ended.exception()
    if failed is not None:
        return f"keeping the etcd lease failed: {failed!r}"
    return term.ended.result() or "leadership ended"
