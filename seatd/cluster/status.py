"""Who is in the cluster: each instance's heartbeat, the leader, etcd's members and health.

Every instance writes `/seatd/<site>/cluster/instances/<name>` (name, advertised address,
role, wall time) every few seconds; `seatctl cluster status` reads those, the leader key and
etcd's own member list and per-member status. Heartbeats are plain keys, not on a lease: an
instance that died stays listed with its last heartbeat, which is what an admin wants to see.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import structlog
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

from seatd.clock import Clock, SystemClock
from seatd.cluster.config import ClusterConfig
from seatd.cluster.election import CALL_TIMEOUT, Election, Instance, foreign
from seatd.config import DEFAULT_CONFIG_PATH, load
from seatd.errors import ConfigError
from seatd.store.etcd import EtcdConfig, aio_channel

log = structlog.get_logger("seatd")


def instances_prefix(site: str) -> bytes:
    return f"/seatd/{site}/cluster/instances/".encode()


def _prefix_end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


@dataclass(frozen=True, slots=True)
class Heartbeat:
    name: str
    address: str
    role: str
    at: str


class Beacon:
    """Writes this instance's heartbeat; `run` only sleeps and calls `tick`."""

    def __init__(self, election: Election, clock: Clock, interval: float) -> None:
        self.election = election
        self.clock = clock
        self.interval = interval
        self.kv = election.kv

    async def tick(self) -> None:
        me = self.election.me
        beat = Heartbeat(
            me.name,
            me.address,
            "leader" if self.election.leading else "standby",
            self.clock.wall().isoformat(),
        )
        key = instances_prefix(self.election.site) + me.name.encode()
        try:
            await self.kv.Put(
                rpc_pb2.PutRequest(key=key, value=json.dumps(asdict(beat)).encode()),
                timeout=CALL_TIMEOUT,
            )
        except grpc.RpcError as exc:
            log.debug("cluster.heartbeat_failed", code=str(exc.code()))

    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.interval)


async def gather(config: ClusterConfig, now: datetime) -> dict[str, Any]:
    """The cluster as etcd sees it, for `seatctl cluster status`."""
    etcd = config.etcd_config()
    channel = aio_channel(etcd)
    kv = rpc_pb2_grpc.KVStub(channel)
    try:
        found = await kv.Range(
            rpc_pb2.RangeRequest(
                key=instances_prefix(config.site),
                range_end=_prefix_end(instances_prefix(config.site)),
            ),
            timeout=CALL_TIMEOUT,
        )
        held = await kv.Range(rpc_pb2.RangeRequest(key=etcd.leader_key), timeout=CALL_TIMEOUT)
        members = await rpc_pb2_grpc.ClusterStub(channel).MemberList(
            rpc_pb2.MemberListRequest(), timeout=CALL_TIMEOUT
        )
    finally:
        await channel.close()
    key = held.kvs[0] if held.kvs else None
    blocked = foreign(key) if key is not None else ""
    leader = Instance.decode(key.value) if key is not None and not blocked else None
    instances = []
    for item in found.kvs:
        beat = json.loads(item.value)
        age = (now - datetime.fromisoformat(beat["at"])).total_seconds()
        instances.append(
            {
                "name": beat["name"],
                "address": beat["address"],
                "role": "leader" if leader and leader.name == beat["name"] else "standby",
                "last_heartbeat": beat["at"],
                "seconds_ago": round(age, 1),
            }
        )
    return {
        "site": config.site,
        "leader": leader.name if leader else "",
        # A leader key no seatd instance wrote: why it blocks every election, and the command
        # that clears it (seatd never deletes it itself).
        "elections_blocked": blocked,
        "unblock": _etcdctl(etcd, f"del {etcd.leader_key.decode()}") if blocked else "",
        "instances": instances,
        "etcd": [await _member(etcd, m) for m in members.members],
    }


def _etcdctl(etcd: EtcdConfig, command: str) -> str:
    """The etcdctl line that runs `command` against this cluster."""
    flags = [f"--endpoints={','.join(etcd.endpoints)}"]
    for flag, path in (("cacert", etcd.ca), ("cert", etcd.cert), ("key", etcd.key)):
        if path is not None:
            flags.append(f"--{flag}={path}")
    return f"etcdctl {' '.join(flags)} {command}"


async def _member(etcd: EtcdConfig, member: Any) -> dict[str, Any]:
    urls = list(member.clientURLs)
    answer: dict[str, Any] = {"name": member.name, "urls": urls, "healthy": False, "error": ""}
    if not urls:
        answer["error"] = "not started"
        return answer
    channel = aio_channel(etcd, urls[0])
    try:
        status = await rpc_pb2_grpc.MaintenanceStub(channel).Status(
            rpc_pb2.StatusRequest(), timeout=CALL_TIMEOUT
        )
        answer.update(
            healthy=not status.errors and status.leader != 0,
            leader=status.leader == status.header.member_id,
            db_size=status.dbSize,
            raft_term=status.raftTerm,
            error="; ".join(status.errors),
        )
    except grpc.RpcError as exc:
        answer["error"] = str(exc.details() if hasattr(exc, "details") else exc)
    finally:
        await channel.close()
    return answer


def report(config_file: Path | None, etcd: str | None, site: str | None) -> dict[str, Any]:
    """`seatctl cluster status`: the [cluster] section of the config file (the daemon's
    default one when present), `--etcd`/`--site` overriding it, read from etcd itself (a
    standby or a dead leader cannot be asked over the admin socket)."""
    path = config_file
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    overrides: dict[str, dict[str, Any]] = {"cluster": {}}
    if etcd:
        overrides["cluster"]["etcd"] = etcd
        # Reading needs no advertised address; one is checked only with etcd set.
        overrides["cluster"].setdefault("advertise", "status.invalid:1")
    if site:
        overrides["cluster"]["site"] = site
    cluster = load(path, overrides).cluster
    if not cluster.enabled:
        raise ConfigError("no [cluster] etcd in the config: pass --etcd URL[,URL...] (and --site)")
    clock = SystemClock()
    return asyncio.run(gather(cluster, clock.wall()))


def render(found: dict[str, Any]) -> str:
    """The status as a person reads it."""
    lines = [f"site {found['site']}: leader {found['leader'] or '(none)'}"]
    if found["elections_blocked"]:
        lines += [
            f"ELECTIONS BLOCKED: {found['elections_blocked']}.",
            "  No instance can lead until it is deleted. Check who wrote it, then run:",
            f"  {found['unblock']}",
        ]
    lines += ["", "instances:"]
    for i in found["instances"]:
        lines.append(
            f"  {i['name']:<16} {i['address']:<22} {i['role']:<8} "
            f"last heartbeat {i['last_heartbeat']} ({i['seconds_ago']:g} s ago)"
        )
    if not found["instances"]:
        lines.append("  (none has written a heartbeat)")
    lines += ["", "etcd members:"]
    for m in found["etcd"]:
        health = "healthy" if m["healthy"] else f"UNHEALTHY {m['error']}".rstrip()
        role = " (etcd leader)" if m.get("leader") else ""
        lines.append(f"  {m['name']:<16} {','.join(m['urls']):<30} {health}{role}")
    return "\n".join(lines)
