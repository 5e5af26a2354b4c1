"""One seatd instance of a cluster: stand by, campaign, lead, step down, stand by again.

While another instance leads, this one serves the standby's refusals (NOT_LEADER with the
leader's address) on its listeners and watches the leader key. When the key goes it
campaigns; on winning it opens the store fenced by its leadership and loads the seat table
while its standby listeners hold the calls that come in, then hands the same listeners over
to the leader's handlers (`seatd.cluster.handover`: the port never closes, the held calls
are answered by the leader) and serves exactly as a daemon that has just restarted:
every session keeps its id and lease token and gets the restart grace to reattach
(DESIGN.md invariant 6), and the journal's chain continues from the head etcd holds. When its
lease can no longer be proven with the margin it stops arbitrating at once (the service asks
before every grant and renewal), tells its workstations to reattach, and stands by again. On
SIGTERM it drains, then revokes its lease so a standby leads at once, not a TTL later.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

import structlog

from seatd import metrics
from seatd.clock import Clock
from seatd.cluster import standby
from seatd.cluster.election import Election, Instance
from seatd.cluster.probe import LeaderProbe
from seatd.cluster.status import Beacon
from seatd.config import Config
from seatd.errors import StorageFailed
from seatd.notify import Notifier, Watchdog, watchdog_interval
from seatd.store import Fence, Snapshot, Store
from seatd.store.etcd import aio_channel, members_channel

log = structlog.get_logger("seatd")


@dataclass(frozen=True, slots=True)
class Term:
    """One leadership term: what the service asks before arbitrating, and what ends when
    the leadership does (with why)."""

    check: Callable[[], None]
    ended: asyncio.Future[str]


# What serves one leadership term (daemon._serve), from the table loaded at the takeover,
# on the standby's servers handed over: returns when the term ends or the daemon is stopped.
ServeTerm = Callable[[Config, Store, Snapshot, Term, standby.StandbyServers], Awaitable[None]]
OpenStore = Callable[[Fence], Store]


# Seconds between checks of the connection to the leader (seatd.cluster.probe).
PROBE_EVERY = 0.5

# Hosts that mean "every address of this machine": no other host can connect to them.
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


def me(config: Config) -> Instance:
    return Instance(config.cluster.instance_name(), config.cluster.advertise, admin_address(config))


def admin_address(config: Config) -> str:
    """The remote admin listener as other hosts reach it ("" without one): where seatctl
    follows an admin call a standby refused. A wildcard host is the advertised host."""
    if not config.admin.listen:
        return ""
    host, _, port = config.admin.listen.rpartition(":")
    if host in _WILDCARD_HOSTS:
        host = config.cluster.advertise.rpartition(":")[0]
    return f"{host}:{port}"


async def run(
    config: Config,
    clock: Clock,
    stop: asyncio.Event,
    serve: ServeTerm,
    open_store: OpenStore,
) -> None:
    etcd = config.cluster.etcd_config()
    channel = aio_channel(etcd)
    renewals = members_channel(etcd)
    election = Election(
        channel,
        renewals=renewals,
        key=etcd.leader_key,
        site=config.cluster.site,
        me=me(config),
        ttl=config.cluster.lease_ttl,
        clock=clock,
    )
    metrics.LEADER.set(0)
    beacon = asyncio.ensure_future(Beacon(election, clock, float(config.cluster.lease_ttl)).run())
    probe = LeaderProbe()
    following = asyncio.ensure_future(
        probe.follow(lambda: None if election.leading else election.leader, PROBE_EVERY)
    )
    try:
        while not stop.is_set():
            fence, config, listeners = await _stand_by(config, clock, stop, election, probe)
            if fence is None:
                break
            metrics.LEADER.set(1)
            metrics.LEADERSHIP_CHANGES.inc()
            holding = asyncio.ensure_future(election.hold())
            store = None
            try:
                try:
                    # Off the loop, which keeps the lease and the standby's answers going.
                    store = await asyncio.to_thread(open_store, fence)
                    snapshot = await asyncio.to_thread(store.load)
                finally:
                    await listeners.release_bare()
                await serve(
                    config, store, snapshot, Term(election.check, holding), listeners.servers
                )
            except StorageFailed as exc:
                # etcd failed under the new leader (lost quorum, a member gone mid-load):
                # stand by again rather than exit; another instance, or this one, leads next.
                log.error("cluster.term_failed", error=exc.message, action="standing by again")
            finally:
                metrics.LEADER.set(0)
                holding.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    try:
                        await holding
                    except Exception as exc:  # already reported as the term's end
                        log.debug("cluster.hold_ended", error=repr(exc))
                # The leader's term closed them; not when it failed before serving.
                await listeners.release()
                if store is not None:
                    store.close()
                # Stopped or deposed, the lease goes now: a standby leads at once.
                await election.resign()
    finally:
        beacon.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beacon
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await probe.close()
        await channel.close()
        renewals.close()


def pinned(config: Config, port: int, admin_port: int = 0) -> Config:
    """`config` with a listen (and advertised) port of 0 replaced by the port bound, and
    the remote admin listener's port of 0 by the one it bound."""
    admin_host, _, admin_wanted = config.admin.listen.rpartition(":")
    if admin_wanted == "0" and admin_port:
        admin = dataclasses.replace(config.admin, listen=f"{admin_host}:{admin_port}")
        config = dataclasses.replace(config, admin=admin)
    host, _, wanted = config.server.listen.rpartition(":")
    if wanted != "0":
        return config
    server = dataclasses.replace(config.server, listen=f"{host}:{port}")
    cluster = config.cluster
    ad_host, _, ad_port = cluster.advertise.rpartition(":")
    if ad_port == "0":
        cluster = dataclasses.replace(cluster, advertise=f"{ad_host}:{port}")
    return dataclasses.replace(config, server=server, cluster=cluster)


@dataclass
class _Standing:
    """The standby's listeners, handed over to the leader at a takeover, and its bare
    metrics endpoint, which the leader's replaces."""

    servers: standby.StandbyServers
    bare: WSGIServer | None

    async def release(self) -> None:
        await self.servers.stop()
        await self.release_bare()

    async def release_bare(self) -> None:
        """Free the metrics port for the leader's own endpoint."""
        bare, self.bare = self.bare, None
        if bare is not None:
            await asyncio.to_thread(bare.shutdown)
            bare.server_close()


def holding(election: Election, probe: LeaderProbe) -> Callable[[], bool]:
    """Whether a call to this standby is held rather than answered now: just elected (the
    table loads), or the leader it would name is gone."""
    return lambda: election.leading or probe.gone(election.leader)


async def _stand_by(
    config: Config, clock: Clock, stop: asyncio.Event, election: Election, probe: LeaderProbe
) -> tuple[Fence | None, Config, _Standing]:
    """Serve refusals and campaign until this instance leads (its fence, the standby's
    listeners still answering: release them once the table is loaded) or is stopped."""
    # Elected (leading) with these listeners still up: the table loads; calls are held.
    servers = await standby.serve(
        config.server, config.admin, election.refusal, clock, holding(election, probe)
    )
    # Port 0 (tests) is chosen once: the leader answers where the standby did.
    config = pinned(config, servers.port, servers.admin_port)
    election.me = me(config)
    log.info(
        "cluster.standby",
        name=election.me.name,
        listen=config.server.listen,
        advertise=election.me.address,
        admin=election.me.admin,
        site=config.cluster.site,
    )
    listeners = _Standing(servers, metrics.serve_bare(config.metrics))
    campaign = asyncio.ensure_future(election.campaign())
    stopping = asyncio.ensure_future(stop.wait())
    waits: list[asyncio.Future[Any]] = [campaign, stopping]

    async def standing() -> str:
        leader = election.leader
        return f"standby; leader {leader.name} at {leader.address}" if leader else "standby"

    # systemd hears a standby is up and alive too (Type=notify, WatchdogSec).
    notifier = Notifier()
    interval = watchdog_interval()
    if notifier.enabled:
        notifier.ready(await standing())
        dog = Watchdog(notifier, standing, interval or 10.0, pet=interval is not None)
        waits.append(asyncio.ensure_future(dog.run()))
    won = False
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        won = campaign.done() and not campaign.cancelled() and campaign.exception() is None
    finally:
        for wait in waits[1:]:
            wait.cancel()
        if not won:
            await listeners.release()
    if not won:
        campaign.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await campaign
        return None, config, listeners
    return campaign.result(), config, listeners
