"""One leader per site, elected through etcd: an etcd lease and a leader key attached to it.

This is etcd's own election recipe (`clientv3/concurrency.Election`) reduced to one key: a
candidate grants itself a lease and creates `/seatd/<site>/leader` (`EtcdConfig.leader_key`)
in a transaction that succeeds only if the key does not exist (`CreateRevision == 0`),
attached to that lease. The key's create revision is the leader's fence: every store write
compares it, so once the lease ends (the key goes with it) or another instance leads (a new
create revision), a write from this instance fails in etcd and changes nothing. Standbys
watch the key and campaign the moment it is deleted.

The leader keeps its lease alive over a keepalive stream, one request in flight at a time
(so each answer belongs to a known send time), and asks `LeaderLease` before arbitrating; it
steps down when the lease can no longer be proven with its margin (`seatd.cluster.lease`).
Each renewal also reads the leader key: a renewal counts only while the key is still this
term's (its create revision, this lease), and a key deleted or replaced by hand makes the
leader step down at once instead of when the lease would end.
Streams carry etcd's `hasleader` metadata, so a member cut off from its quorum ends them
instead of leaving them silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict, dataclass

import grpc
import structlog
from aetcd.rpc import kv_pb2, rpc_pb2, rpc_pb2_grpc

from seatd.clock import Clock
from seatd.cluster.lease import LeaderLease, LeaseTiming
from seatd.errors import NotLeader
from seatd.store.etcd import Fence

log = structlog.get_logger("seatd")

# etcd ends a stream whose member has lost its own leader only when asked to.
REQUIRE_LEADER = (("hasleader", "true"),)
# Seconds a unary etcd call may take before this instance treats etcd as unreachable.
CALL_TIMEOUT = 2.0
# Seconds between attempts while etcd cannot be reached at all.
RETRY = 0.2


@dataclass(frozen=True, slots=True)
class Instance:
    """What a leader advertises in the leader key (and every instance in its heartbeat)."""

    name: str
    # HOST:PORT workstations connect to.
    address: str
    # HOST:PORT of the remote admin listener ("" when only the local socket serves).
    admin: str = ""

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Instance | None:
        try:
            data = json.loads(raw)
            return cls(str(data["name"]), str(data["address"]), str(data.get("admin", "")))
        except (ValueError, KeyError, TypeError):
            return None


class Election:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        key: bytes,
        site: str,
        me: Instance,
        ttl: int,
        clock: Clock,
    ) -> None:
        self.kv = rpc_pb2_grpc.KVStub(channel)
        self.leases = rpc_pb2_grpc.LeaseStub(channel)
        self.watches = rpc_pb2_grpc.WatchStub(channel)
        self.site = site
        self.key = key
        self.me = me
        self.ttl = ttl
        self.clock = clock
        self.lease = LeaderLease(LeaseTiming(float(ttl)))
        self.lease_id = 0
        # The leader as last seen in etcd (this instance while it leads); None: no leader.
        self.leader: Instance | None = None
        self.fence: Fence | None = None
        # Why the last leadership ended ("" while leading or never led).
        self.why = ""

    # -- what the service asks -----------------------------------------------------------------

    @property
    def leading(self) -> bool:
        return self.fence is not None and self.lease.granting(self.clock.monotonic())

    def check(self) -> None:
        """Raise NotLeader unless this instance may arbitrate right now."""
        if not self.leading:
            raise self.refusal()

    def refusal(self) -> NotLeader:
        """What a call is told while this instance does not arbitrate."""
        if self.leading:
            # Elected, its standby listeners still answering while it loads the table:
            # workstations retry here (naming itself keeps them off the other targets).
            why = " yet (just elected: loading the seat table)"
            return NotLeader(self.me.address, self.me.name, why, admin=self.me.admin)
        leader = self.leader if self.leader != self.me else None
        why = f" ({self.why})" if self.why else ""
        if self.fence is not None:
            why = " (its etcd lease could not be renewed in time: stepping down)"
        if leader is None:
            return NotLeader(why=why)
        return NotLeader(leader.address, leader.name, why, admin=leader.admin)

    # -- campaign ----------------------------------------------------------------------------

    async def campaign(self) -> Fence:
        """Return once this instance leads: the fence its writes must carry."""
        while True:
            try:
                fence = await self._try_once()
            except (grpc.RpcError, TimeoutError) as exc:
                log.warning("cluster.etcd_unreachable", error=_describe(exc), retry=RETRY)
                await asyncio.sleep(RETRY)
                continue
            if fence is not None:
                return fence

    async def _try_once(self) -> Fence | None:
        """One attempt: lead, or watch the current leader until its key goes (None)."""
        sent = self.clock.monotonic()
        granted = await self.leases.LeaseGrant(
            rpc_pb2.LeaseGrantRequest(TTL=self.ttl), timeout=CALL_TIMEOUT
        )
        if granted.error:
            raise TimeoutError(granted.error)
        lease_id = granted.ID
        txn = rpc_pb2.TxnRequest(
            compare=[
                rpc_pb2.Compare(
                    key=self.key,
                    target=rpc_pb2.Compare.CREATE,
                    result=rpc_pb2.Compare.EQUAL,
                    create_revision=0,
                )
            ],
            success=[
                rpc_pb2.RequestOp(
                    request_put=rpc_pb2.PutRequest(
                        key=self.key, value=self.me.encode(), lease=lease_id
                    )
                )
            ],
            failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=self.key))],
        )
        try:
            answer = await self.kv.Txn(txn, timeout=CALL_TIMEOUT)
        except BaseException:
            await self._revoke(lease_id)
            raise
        if answer.succeeded:
            self.lease_id = lease_id
            self.lease.renewed(sent, float(granted.TTL))
            self.fence = Fence(self.key, answer.header.revision)
            self.leader, self.why = self.me, ""
            log.info(
                "cluster.elected",
                name=self.me.name,
                revision=answer.header.revision,
                lease_ttl=granted.TTL,
            )
            return self.fence
        await self._revoke(lease_id)
        kvs = answer.responses[0].response_range.kvs
        if not kvs:
            return None  # deleted between the compare and the read: campaign again
        self._saw(kvs[0].value)
        await self._until_deleted(answer.header.revision)
        return None

    def _saw(self, raw: bytes) -> None:
        leader = Instance.decode(raw)
        if leader != self.leader:
            log.info(
                "cluster.leader_seen",
                leader=leader.name if leader else "?",
                address=leader.address if leader else "",
            )
        self.leader = leader

    async def _until_deleted(self, revision: int) -> None:
        """Watch the leader key from `revision` on; return when it is deleted or the watch
        ends (the caller reads the key again)."""
        call = self.watches.Watch(metadata=REQUIRE_LEADER)
        try:
            await call.write(
                rpc_pb2.WatchRequest(
                    create_request=rpc_pb2.WatchCreateRequest(
                        key=self.key, start_revision=revision + 1
                    )
                )
            )
            while True:
                answer = await call.read()
                if answer is grpc.aio.EOF or answer.canceled:
                    return
                for event in answer.events:
                    if event.type == kv_pb2.Event.DELETE:
                        log.info("cluster.leader_gone", leader=self._leader_name())
                        self.leader = None
                        return
                    self._saw(event.kv.value)
        finally:
            call.cancel()

    def _leader_name(self) -> str:
        return self.leader.name if self.leader else "?"

    # -- holding -------------------------------------------------------------------------------

    async def hold(self) -> str:
        """Keep the lease alive while leading; return why leadership ended. Stops trying
        (and so stops granting) at the margin, not when etcd finally says no."""
        timing = self.lease.timing
        call: (
            grpc.aio.StreamStreamCall[rpc_pb2.LeaseKeepAliveRequest, rpc_pb2.LeaseKeepAliveResponse]
            | None
        ) = None
        try:
            while True:
                now = self.clock.monotonic()
                if not self.lease.granting(now):
                    return self._lost("its etcd lease could not be renewed in time")
                if call is None:
                    call = self.leases.LeaseKeepAlive(metadata=REQUIRE_LEADER)
                sent = now
                budget = max(0.0, min(timing.renew_interval, self.lease.granting_until() - now))
                try:
                    await asyncio.wait_for(
                        call.write(rpc_pb2.LeaseKeepAliveRequest(ID=self.lease_id)), budget
                    )
                    answer = await asyncio.wait_for(call.read(), budget)
                except (
                    grpc.RpcError,
                    TimeoutError,
                    grpc.aio.UsageError,
                    asyncio.InvalidStateError,  # a write on a stream etcd already ended
                ) as exc:
                    # A fresh stream for the next try: a late answer on this one could not
                    # be told apart from the next request's.
                    log.warning("cluster.renew_failed", error=_describe(exc))
                    call.cancel()
                    call = None
                    await self._sleep_until_next(sent)
                    continue
                if answer is grpc.aio.EOF:
                    call = None
                    continue
                if answer.TTL <= 0:
                    return self._lost("etcd says its lease has ended")
                try:
                    lost = await self.key_lost()
                except (grpc.RpcError, TimeoutError) as exc:
                    # The renewal proves nothing until the key is seen: no more time granted.
                    log.warning("cluster.renew_failed", error=_describe(exc))
                    await self._sleep_until_next(sent)
                    continue
                if lost:
                    return self._lost(lost)
                self.lease.renewed(sent, float(answer.TTL))
                await self._sleep_until_next(sent)
        finally:
            if call is not None:
                call.cancel()

    async def key_lost(self) -> str:
        """Why the leader key is no longer this term's ("" while it is: created at the
        fence's revision, attached to this lease). A key deleted by hand (or replaced, or put
        again without the lease, so the lease's end would no longer free it) would otherwise
        go unnoticed while the lease renews: standbys would campaign, and this instance would
        go on answering pings (its grants fail in etcd, fenced)."""
        fence = self.fence
        if fence is None:
            return "it no longer leads"
        found = await self.kv.Range(rpc_pb2.RangeRequest(key=self.key), timeout=CALL_TIMEOUT)
        if not found.kvs:
            return "its leader key is gone from etcd (deleted, or its lease has ended)"
        key = found.kvs[0]
        if key.create_revision != fence.revision or key.lease != self.lease_id:
            return "its leader key was replaced in etcd"
        return ""

    async def _sleep_until_next(self, sent: float) -> None:
        next_at = min(sent + self.lease.timing.renew_interval, self.lease.granting_until())
        await asyncio.sleep(max(0.0, next_at - self.clock.monotonic()))

    def _lost(self, why: str) -> str:
        log.warning("cluster.stepping_down", name=self.me.name, reason=why)
        self.lease.lost()
        self.fence = None
        self.why = why
        if self.leader == self.me:
            self.leader = None
        return why

    async def resign(self) -> None:
        """Give leadership up now (revoke the lease: the key goes, a standby takes over at
        once instead of after the TTL)."""
        self.lease.lost()
        self.fence = None
        if self.leader == self.me:
            self.leader = None
        if self.lease_id:
            await self._revoke(self.lease_id)
            self.lease_id = 0

    async def _revoke(self, lease_id: int) -> None:
        with contextlib.suppress(grpc.RpcError, TimeoutError):
            await self.leases.LeaseRevoke(
                rpc_pb2.LeaseRevokeRequest(ID=lease_id), timeout=CALL_TIMEOUT
            )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError):
        code = exc.code() if hasattr(exc, "code") else None
        details = exc.details() if hasattr(exc, "details") else ""
        return f"{code.name if code else 'error'}: {details}"
    return type(exc).__name__
